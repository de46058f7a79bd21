"""A peft adapter (prompt tuning, prefix tuning, P-tuning or LoRA) on a copy of a local causal LM: training
steps, greedy answers, gold log-probabilities, and checkpoints that resume exactly.

The adapter is put on a deep copy of the target's weights, so that the run's baselines (scored through the
target client) always see the untouched model, whatever the method does to the layers it wraps. Inputs are
the execution template without instruction and demonstrations (``Input: x\\nOutput:``): the learned
parameters stand in for both. The loss is the cross-entropy of the gold output tokens (and the newline that
ends an answer) after that context.
"""

from __future__ import annotations

import copy
import inspect
import json
import random
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optimizer.errors import UsageError
from optimizer.models.providers.decoding import as_list
from optimizer.models.providers.reuse import known_generation, reuse_enabled
from optimizer.settings import SoftConfig, SoftMethod
from optimizer.tasks.templates import ExecutionTemplate
from optimizer.types import Example

__all__ = ["DEFAULT_LR", "SoftModel", "peft_config"]

DEFAULT_LR: dict[str, float] = {"prompt-tuning": 0.03, "prefix-tuning": 0.01, "p-tuning": 0.01, "lora": 0.001}
"""AdamW learning rate per method when ``learning_rate`` is not given."""

_LORA_TARGETS = ("q_proj", "v_proj", "query", "value", "c_attn", "q_lin", "v_lin")


def peft_config(method: SoftMethod, cfg: SoftConfig, model: Any, tokenizer: Any, task_type: str = "CAUSAL_LM") -> Any:
    """The peft configuration of ``method`` for ``model``.

    Raises:
        UsageError: LoRA on a model none of whose layers it knows how to wrap.
    """
    import peft

    if method == "prompt-tuning":  # init_text is applied after the model is built (SoftModel._init_from_text)
        return peft.PromptTuningConfig(task_type=task_type, num_virtual_tokens=cfg.virtual_tokens,
                                       prompt_tuning_init=peft.PromptTuningInit.SAMPLE_VOCAB)
    if method == "prefix-tuning":
        return peft.PrefixTuningConfig(task_type=task_type, num_virtual_tokens=cfg.virtual_tokens)
    if method == "p-tuning":
        return peft.PromptEncoderConfig(task_type=task_type, num_virtual_tokens=cfg.virtual_tokens,
                                        encoder_hidden_size=cfg.encoder_hidden_size)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in _LORA_TARGETS if t in names]
    if not targets:
        raise UsageError("lora: this model has none of the attention projections LoRA wraps "
                         f"({', '.join(_LORA_TARGETS)})")
    return peft.LoraConfig(task_type=task_type, r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                           target_modules=targets)


class SoftModel:
    """A trainable peft adapter on a copy of a causal LM.

    Args:
        method: the peft method.
        cfg: the searcher's parameters.
        base: the target's transformers model (copied, never changed).
        tokenizer: its tokenizer.
        template: the run's execution template (its style and answer length; demonstrations are not used).
        seed: the run seed (the adapter's initialisation).
    """

    task_type = "CAUSAL_LM"
    """peft's task type for the model class (a masked LM's is FEATURE_EXTRACTION: its logits, virtual tokens
    first)."""

    def __init__(self, method: SoftMethod, cfg: SoftConfig, base: Any, tokenizer: Any, template: ExecutionTemplate,
                 seed: int) -> None:
        import peft
        import torch

        if template.style != "completion":
            raise UsageError(f"{method} trains on the completion-style template; drop --template chat")
        self.method, self.cfg, self.tokenizer = method, cfg, tokenizer
        self.template = template.with_demos(())
        torch.manual_seed(seed)
        model = copy.deepcopy(base).float().train()
        for p in model.parameters():
            p.requires_grad_(False)
        with warnings.catch_warnings():  # peft reads a property transformers deprecates; nothing a user can change
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
            self.model = peft.get_peft_model(model, peft_config(method, cfg, model, tokenizer, self.task_type))
        if method == "prompt-tuning" and cfg.init_text:
            self._init_from_text(cfg.init_text)
        self.model.eval()  # no dropout anywhere: training is exact to replay after a resume
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.trainable = sum(p.numel() for p in self.params)
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.learning_rate or DEFAULT_LR[method], weight_decay=0.0)
        self.steps_done = 0
        self.loaded: Path | None = None
        """The checkpoint whose weights the adapter holds (None: the training weights)."""
        self._greedy: dict[tuple[Path | None, tuple[int, ...]], str] = {}
        """Answers a log-probability pass found (see :meth:`logprobs`), by checkpoint and context; emptied when the
        training weights change."""
        self.known_answers = 0
        """Answers taken from a log-probability pass instead of decoding."""
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self._bos = [tokenizer.bos_token_id] if tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id] else []
        ends = getattr(getattr(base, "generation_config", None), "eos_token_id", None)
        eos = {tokenizer.eos_token_id, *as_list(ends)}
        self.eos_ids = sorted(i for i in eos if i is not None)
        self.device = next(base.parameters()).device
        self._keep = "logits_to_keep" in inspect.signature(base.forward).parameters

    def _init_from_text(self, text: str) -> None:
        """Prompt tuning's "init from text": the virtual tokens start as the embeddings of ``text``'s tokens,
        repeated to fill them (as peft's ``PromptTuningInit.TEXT``, without loading the tokenizer again)."""
        import torch

        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise UsageError(f"--init-text {text!r} has no tokens")
        n = self.cfg.virtual_tokens
        ids = (ids * (n // len(ids) + 1))[:n]
        words = self.model.get_base_model().get_input_embeddings().weight
        encoder = self.model.prompt_encoder[self.model.active_adapter]
        with torch.no_grad():
            encoder.embedding.weight.copy_(words[torch.tensor(ids)].detach().float())

    # -- inputs --------------------------------------------------------------------------------
    def context(self, example: Example) -> str:
        """The text the adapter sees before the answer."""
        return self.template.context("", example)

    def _context_ids(self, example: Example) -> list[int]:
        return self._bos + self.tokenizer(self.context(example), add_special_tokens=False)["input_ids"]

    def _pair(self, example: Example, answer: str) -> tuple[list[int], list[int]]:
        return self._context_ids(example), self.tokenizer(answer, add_special_tokens=False)["input_ids"]

    def known(self, example: Example) -> bool:
        """Whether :meth:`answers` has ``example``'s answer from a log-probability pass under the weights held now
        (so that a scorer can batch the others together)."""
        return reuse_enabled() and (self.loaded, tuple(self._context_ids(example))) in self._greedy

    def _batch(self, pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[Any, Any, Any]:
        """Right-padded input ids, attention mask and labels (-100 outside the answer tokens)."""
        import torch

        width = max(len(c) + len(a) for c, a in pairs)
        ids = torch.full((len(pairs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        labels = torch.full((len(pairs), width), -100, dtype=torch.long)
        for row, (c, a) in enumerate(pairs):
            ids[row, : len(c) + len(a)] = torch.tensor(c + a)
            mask[row, : len(c) + len(a)] = 1
            labels[row, len(c): len(c) + len(a)] = torch.tensor(a)
        return ids.to(self.device), mask.to(self.device), labels.to(self.device)

    def _token_nll(self, ids: Any, mask: Any, labels: Any, greedy: bool = False) -> Any:
        """Per-row summed negative log-likelihood of the labelled tokens (virtual tokens handled by peft), and the
        count of those tokens, or (with ``greedy``) the model's greedy next token at every position from the first
        that predicts a labelled token (-1 before it).

        The LM head runs only from that position on (``logits_to_keep``, where the model takes it): the context
        before it predicts nothing the loss reads, and a vocabulary-wide head on every position is a large share
        of a step."""
        import torch

        labelled = (labels != -100).any(0).nonzero()
        start = max(int(labelled[0]) - 1, 0) if len(labelled) else 0
        keep = ids.shape[1] - start
        # an index tensor, not a count: the model then gathers those positions into a contiguous tensor, whose head
        # is one matrix product (a count slices a strided view, which the head multiplies far more slowly)
        rows = torch.arange(self.virtual_inputs + start, self.virtual_inputs + ids.shape[1], device=ids.device)
        logits = self.model(input_ids=ids, attention_mask=mask, **({"logits_to_keep": rows} if self._keep else {}))
        logits = logits.logits[:, -keep:]  # prompt-learning methods put their virtual tokens first
        shift_logits, shift_labels = logits[:, :-1].float(), labels[:, start + 1:]
        loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                 shift_labels.reshape(-1), ignore_index=-100, reduction="none")
        if not greedy:
            return loss.view(shift_labels.shape).sum(1), (shift_labels != -100).sum(1)
        tokens = torch.full(ids.shape, -1, dtype=torch.long, device=ids.device)
        tokens[:, start:] = logits.argmax(-1)
        return loss.view(shift_labels.shape).sum(1), tokens

    # -- training ------------------------------------------------------------------------------
    def input_tokens(self, examples: Sequence[Example], *, answers: bool) -> int:
        """The input tokens of one pass over ``examples``: the context, and the gold answer when it is read
        (training and log-probabilities; ``answers=False`` for generation, whose answer is output), and the
        virtual tokens prompt tuning and P-tuning put before them."""
        pairs = [self._pair(ex, " " + ex.output + self.template.stop[0]) for ex in examples]
        return sum(self.virtual_inputs + len(c) + (len(a) if answers else 0) for c, a in pairs)

    @property
    def virtual_inputs(self) -> int:
        """Virtual tokens in each input row (prefix tuning's are keys and values, LoRA has none)."""
        return self.cfg.virtual_tokens if self.method in ("prompt-tuning", "p-tuning") else 0

    def train_step(self, batch: Sequence[Example]) -> float:
        """One AdamW step on the mean per-token loss of the gold answers; returns the loss."""
        pairs = [self._pair(ex, " " + ex.output + self.template.stop[0]) for ex in batch]  # ends where answers stop
        ids, mask, labels = self._batch(pairs)
        self.optimizer.zero_grad(set_to_none=True)
        nll, count = self._token_nll(ids, mask, labels)
        loss = nll.sum() / count.sum().clamp(min=1)
        loss.backward()
        self.optimizer.step()
        self.steps_done += 1
        self._greedy.clear()
        return float(loss.detach())

    # -- scoring -------------------------------------------------------------------------------
    def logprobs(self, examples: Sequence[Example]) -> list[float]:
        """The log-probability of each gold output (``" " + output``, as the instruction scorer asks) under the
        adapter.

        The pass also reads the greedy answer where it can: when every gold token is the model's greedy choice and
        the greedy token after them ends the answer (the stop, an end token), greedy decoding would write the gold
        answer, so :meth:`answers` takes it from here (single-line answers within the answer length;
        ``APO_LOGPROB_REUSE=0`` turns it off, as for the local target)."""
        import torch

        pairs = [self._pair(ex, " " + ex.output) for ex in examples]
        with torch.inference_mode():
            nll, greedy = self._token_nll(*self._batch(pairs), greedy=True)
        if not self.template.multiline and reuse_enabled():
            for (ctx, gold), row in zip(pairs, greedy.tolist()):
                answer = self._read_greedy(ctx, gold, row)
                if answer is not None:
                    self._greedy[(self.loaded, tuple(ctx))] = answer
        return [-float(x) for x in nll]

    def _read_greedy(self, ctx: list[int], gold: list[int], greedy: list[int]) -> str | None:
        """The greedy answer after ``ctx`` when the row's greedy tokens (``greedy[i]``: the next token after
        position ``i``) follow ``gold`` and then end it (:func:`~optimizer.models.providers.reuse.known_generation`,
        as for the local target); else None."""
        start = len(ctx) - 1
        if not gold or greedy[start:start + len(gold)] != gold:
            return None
        found = known_generation(self.tokenizer, self.eos_ids, (tuple(gold), greedy[start + len(gold)]),
                                 self.template.stop, self.template.max_tokens, len(ctx))
        return None if found is None else found.text.split("\n", 1)[0].strip()

    def answers(self, examples: Sequence[Example]) -> list[str]:
        """Greedy answers under the adapter (to the first newline; to a blank line where answers span lines), in one
        batch with a key/value cache.

        What the adapter adds before the inputs (prompt tuning's and P-tuning's virtual tokens, prefix tuning's
        keys and values) goes into the cache first, once for all rows; each row then follows, left-padded, at the
        positions peft's own forward pass gives it (after the virtual tokens), and leaves the batch when it ends.
        The answers are those of greedy decoding through peft's forward pass, one full pass a token. Answers a
        log-probability pass under the same weights already found (:meth:`logprobs`) are not decoded again.
        """
        contexts = [self._context_ids(ex) for ex in examples]
        known = [self._greedy.get((self.loaded, tuple(c))) if reuse_enabled() else None for c in contexts]
        self.known_answers += sum(k is not None for k in known)
        rows = [c for c, k in zip(contexts, known) if k is None]
        if not rows:
            return [k for k in known if k is not None]
        decoded = iter(self._decode(rows))
        return [k if k is not None else next(decoded) for k in known]

    def _decode(self, rows: list[list[int]]) -> list[str]:
        """Greedy answers after each row's tokens (see :meth:`answers`)."""
        import torch

        from optimizer.models.providers.decoding import StopStrings, greedy_decode
        from optimizer.models.providers.prefix import cache_kwarg

        head = 0 if self.method == "lora" else self.cfg.virtual_tokens
        width = head + max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        mask[:, :head] = 1
        for i, r in enumerate(rows):
            ids[i, width - len(r):], mask[i, width - len(r):] = torch.tensor(r, dtype=torch.long), 1
        base = self.model.get_base_model()
        stops = StopStrings(self.tokenizer, [self.template.stop] * len(rows), width)
        with torch.inference_mode():
            out = greedy_decode(base, ids.to(self.device), mask.to(self.device), head=head,
                                cache=self._virtual_cache(base, len(rows), width) if head else None,
                                cache_kw=cache_kwarg(base), max_tokens=self.template.max_tokens, stops=stops,
                                eos_ids=self.eos_ids, pad_id=self.pad_id,
                                keep_logits="logits_to_keep" in inspect.signature(base.forward).parameters)
        texts = self.tokenizer.batch_decode(out[:, width:], skip_special_tokens=True)
        if self.template.multiline:
            return [self.template.answer(text) for text in texts]
        return [text.split("\n", 1)[0].strip() for text in texts]  # not splitlines(): \x1e, \u2028 stay in a line

    def _virtual_cache(self, base: Any, rows: int, width: int) -> Any:
        """The key/value cache of the adapter's virtual tokens for ``rows`` rows (positions 0 to
        ``virtual_tokens - 1``), as peft's forward pass puts them before the inputs."""
        from optimizer.models.providers.decoding import output_cache

        if self.method == "prefix-tuning":
            return self.model.get_prompt(rows, max_cache_len=width + self.template.max_tokens)
        prompts = self.model.get_prompt(batch_size=rows)
        dtype = base.get_input_embeddings().weight.dtype
        return output_cache(base(inputs_embeds=prompts.to(dtype), use_cache=True))

    # -- checkpoints ---------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """The adapter in peft's format (safetensors and adapter_config.json) and the trainer's state."""
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(folder), safe_serialization=True)
        from safetensors.torch import save_file

        save_file({n: p.detach().contiguous() for n, p in self.model.named_parameters() if p.requires_grad},
                  str(folder / "trainable.safetensors"))
        torch.save({"optimizer": self.optimizer.state_dict(), "steps": self.steps_done,
                    "torch_rng": torch.get_rng_state(), "python_rng": random.getstate()}, folder / "trainer.pt")
        (folder / "apo_adapter.json").write_text(json.dumps({"method": self.method, "trainable": self.trainable,
                                                             "steps": self.steps_done}) + "\n", encoding="utf-8")

    def load_adapter(self, folder: Path) -> None:
        """Set the trained parameters from a checkpoint (for scoring it). They are read from
        ``trainable.safetensors``, which holds every trained tensor as it is trained (P-tuning's prompt encoder,
        where peft's own file keeps only the virtual tokens it produces)."""
        import torch
        from safetensors.torch import load_file

        saved = load_file(str(folder / "trainable.safetensors"))
        params = dict(self.model.named_parameters())
        missing = [n for n, p in params.items() if p.requires_grad and n not in saved]
        if missing:
            raise UsageError(f"checkpoint {folder} does not fit this adapter (missing {missing[:3]})")
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)
        self.loaded = folder

    def restore(self, folder: Path) -> None:
        """Continue training from a checkpoint: its weights, optimizer state and step count."""
        import torch

        self.load_adapter(folder)
        state = torch.load(folder / "trainer.pt", weights_only=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps_done = int(state["steps"])
