"""Local transformers causal LMs: batched generation and continuation log-probabilities.

:class:`HFAdapter` wraps a loaded model and its tokenizer; ``load_hf`` (in
:mod:`optimizer.models.providers.hf_loading`) loads one from a folder, a ``.gguf``
file or a Hub name, once per process.

torch and transformers are imported only when a model is loaded.

Example:
    ::

        from optimizer.models.providers.hf_loading import load_hf
        from optimizer.types import LogprobRequest

        lm = load_hf("/models/SmolLM2-135M-Instruct.Q4_1.gguf")
        [r] = lm.logprob([LogprobRequest(context="The capital of France is", continuation=" Paris")])
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import threading
from typing import Any

from optimizer.errors import CapabilityError
from optimizer.models.base import CHAT, GENERATE, LOGPROB, WHITEBOX
from optimizer.models.providers.decoding import (
    SeededSampler,
    StopStrings,
    as_list,
    context_window,
    greedy_decode,
    output_cache,
)
from optimizer.models.providers.prefix import (
    PrefixCache,
    cache_kwarg,
    chunks,
    plan_batches,
    prefix_cache_enabled,
    stack_caches,
    stackable,
)
from optimizer.models.providers.reuse import GreedyAnswers, RowCache, known_answers, reuse_enabled, row_slices
from optimizer.models.stops import cut_at_stop
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["DEFAULT_BATCH_SIZE", "HFAdapter"]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
"""Requests per forward pass."""

DEFAULT_STACK_ROWS = 64
"""Rows per forward pass when rows of several prompts run together, each from its own cached prefix. A decoding
step reads every weight whatever the number of rows, so on a CPU more rows cost little more per step."""

DEFAULT_BATCH_TOKENS = 16_384
"""Upper bound on batch rows times padded length, to bound memory with long prompts."""

_END_MARKERS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
"""Special tokens that end a generation wherever the tokenizer defines them."""


def _seed_for(seed: int | None, sample_index: int) -> int:
    """A 63-bit generator seed from a request's seed and sample index."""
    digest = hashlib.sha256(f"{seed if seed is not None else 0}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class HFAdapter:
    """A transformers causal LM behind the adapter protocol (generate, logprob, white-box).

    Args:
        model: a loaded ``PreTrainedModel`` with a causal LM head, in eval mode.
        tokenizer: its tokenizer.
        name: the model id reported in results (the model string the user wrote).
        path: where the weights came from (a file, folder or Hub name), recorded in a run's
            provenance; None when unknown.
        batch_size: requests per forward pass (with the prefix cache on, rows of several prompts
            share a forward pass, up to :data:`DEFAULT_STACK_ROWS`).
        lock: serialises forward passes when several adapters share the model.
    """

    kind = "causal"
    """White-box reading: the prediction is the next token."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        name: str,
        path: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lock: threading.Lock | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.path = path
        self.batch_size = batch_size
        self.stack_rows = max(batch_size, DEFAULT_STACK_ROWS)
        self._stackable: bool | None = None
        self.batch_tokens = DEFAULT_BATCH_TOKENS
        self.lock = lock or threading.Lock()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = {tokenizer.eos_token_id, *as_list(getattr(model.generation_config, "eos_token_id", None))}
        added = tokenizer.get_added_vocab()
        eos.update(added[t] for t in _END_MARKERS if t in added)
        self.eos_ids = sorted(i for i in eos if i is not None)
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        adds_bos = len(with_special) > len(plain) and with_special[0] == tokenizer.bos_token_id
        self._bos = [tokenizer.bos_token_id] if adds_bos else []
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self._empty_context = [prefix if prefix is not None else self.pad_id]
        self.max_length = context_window(model, tokenizer)
        self._cut_warned = False
        self._keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._cache_kw = cache_kwarg(model)
        self.prefixes, self.rows, self.answers = PrefixCache(), RowCache(), GreedyAnswers()
        caps = {GENERATE, LOGPROB, WHITEBOX}
        if getattr(tokenizer, "chat_template", None):
            caps.add(CHAT)
        self.capabilities: frozenset[str] = frozenset(caps)

    @property
    def device(self) -> Any:
        """The torch device holding the weights."""
        return self.model.device

    def __repr__(self) -> str:
        return f"HFAdapter(name={self.name!r}, device={self.device}, capabilities={sorted(self.capabilities)})"

    # ----------------------------------------------------------------------------- generation

    def _prompt_ids(self, request: GenerateRequest) -> list[int]:
        if request.messages is None:
            return self._bos + self.tokenizer(request.prompt, add_special_tokens=False)["input_ids"]
        if CHAT not in self.capabilities:
            raise CapabilityError(
                f"model {self.name!r} has no chat template, so it cannot take chat messages; "
                "use a completion-style template (a prompt) or an instruction-tuned model"
            )
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Generate one completion per request, in order.

        Requests with the same ``max_tokens`` and ``temperature`` are batched (left-padded). With the prefix cache
        on, each row continues its prompt's cached prefix, rows of several prompts share a batch (by their own
        length), and greedy decoding drops each row as it ends; a greedy answer that a log-probability pass of the
        same prompt found costs no pass, and a prompt whose keys and values it kept runs its last token only
        (:mod:`~optimizer.models.providers.reuse`). Temperature 0 is greedy; otherwise each request samples from
        its own generator seeded by ``(seed, sample_index)``, so results do not depend on batching.

        Args:
            requests: the requests.

        Returns:
            One Generation per request, cut at the first stop string.

        Raises:
            CapabilityError: a chat request for a model without a chat template.
        """
        ids = [self._prompt_ids(r) for r in requests]
        results: dict[int, Generation | None] = dict.fromkeys(range(len(requests)))
        groups: dict[tuple[int, float], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_tokens, r.temperature), []).append(i)
        for (max_tokens, temperature), members in groups.items():
            room = max(1, self.max_length - max_tokens)  # keep the prompt's end when too long
            self._warn_cut(max(len(ids[i]) for i in members), room)
            prompts = {i: ids[i][-room:] for i in members}
            lengths = {i: len(p) + max_tokens for i, p in prompts.items()}
            whole: list[int] = []
            if temperature == 0 and self._stacks():  # what log-probability passes left: answers, keys and values
                results.update(known_answers(self.answers, self.tokenizer, self.eos_ids, prompts, requests, max_tokens))
                whole = [i for i in members if results[i] is None and self.rows.has(prompts[i][:-1])]
                members = [i for i in members if results[i] is None and i not in set(whole)]
            planned = plan_batches(members, prompts, lengths, kept=self.prefixes, stack=self._stacks(),
                                   batch_rows=self.batch_size, stack_rows=self.stack_rows,
                                   batch_tokens=self.batch_tokens)
            planned += [(b, {i: len(prompts[i]) - 1 for i in b})  # a whole prompt kept: its last token runs
                        for b in chunks(whole, lengths, self.stack_rows, 2 * self.batch_tokens)]
            for batch, shared in planned:
                outs = self._generate_batch([prompts[i] for i in batch], [requests[i] for i in batch],
                                            [shared[i] for i in batch], max_tokens, temperature)
                results.update(zip(batch, outs))
        return [r for r in results.values() if r is not None]

    def _warn_cut(self, longest: int, room: int) -> None:
        """Say once per model that prompts longer than its context window lose their beginning."""
        if longest > room and not self._cut_warned:
            self._cut_warned = True
            logger.warning("%s: a prompt of %d tokens was cut to its last %d (the model's context window is %d "
                           "tokens); the instruction and first demonstrations of such prompts are not seen. Use "
                           "fewer demonstrations (--demo-k) or shorter examples.", self.name, longest, room,
                           self.max_length)

    def _stacks(self) -> bool:
        """Whether rows of different prefixes share batches: the prefix cache is on and this model's key/value
        caches stack (probed once)."""
        if not prefix_cache_enabled():
            return False
        if self._stackable is None:
            import torch

            with self.lock, torch.inference_mode():
                out = self.model(input_ids=torch.tensor([self._empty_context], device=self.device), use_cache=True)
            self._stackable = stackable(output_cache(out))
        return self._stackable

    def _prefix_cache(self, prompts: list[list[int]], shared: list[int]) -> Any:
        """The key/value cache of a batch's prefixes: one per run of rows that share it, stacked."""
        segments: list[list[Any]] = []
        for p, n in zip(prompts, shared):
            if segments and segments[-1][0] == p[:n]:
                segments[-1][1] += 1
            else:
                segments.append([p[:n], 1])
        parts = [self._head_cache(head, rows) if head else None for head, rows in segments]
        if len(parts) == 1:
            return parts[0]
        return stack_caches(parts, [len(head) for head, _ in segments], [rows for _, rows in segments])

    def _head_cache(self, head: list[int], rows: int) -> Any:
        """The cache of ``head`` for ``rows`` rows: a whole prompt kept by a log-probability pass, else a prefix."""
        whole = self.rows.cache(self.model, self.prefixes, head, rows, self._keep_logits)
        return whole if whole is not None else self.prefixes.get(self.model, head, rows, self._keep_logits)

    def _generation_config(self, max_tokens: int) -> Any:
        """transformers' settings for ``generate``: greedy over the processed logits (a seeded sampler, when
        sampling, forces its token), nothing else changing them."""
        from transformers import GenerationConfig

        return GenerationConfig(
            max_new_tokens=max_tokens, min_new_tokens=0, do_sample=False, num_beams=1, repetition_penalty=1.0,
            no_repeat_ngram_size=0, temperature=1.0, top_k=None, top_p=1.0, pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None,
        )

    def _generate_batch(
        self, prompts: list[list[int]], requests: list[GenerateRequest], shared: list[int], max_tokens: int,
        temperature: float
    ) -> list[Generation]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        # each row: padding, its cached prefix (``shared`` tokens, ending at ``head``), padding, its own tokens
        head = max(shared)
        width = head + max(len(p) - n for p, n in zip(prompts, shared))
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, (p, n) in enumerate(zip(prompts, shared)):
            input_ids[row, head - n : head], mask[row, head - n : head] = torch.tensor(p[:n], dtype=torch.long), 1
            input_ids[row, width - len(p) + n :] = torch.tensor(p[n:], dtype=torch.long)
            mask[row, width - len(p) + n :] = 1
        stops = StopStrings(self.tokenizer, [r.stop for r in requests], width)
        processors = LogitsProcessorList()
        if temperature > 0:
            gens = [
                torch.Generator(device=self.device).manual_seed(_seed_for(r.seed, r.sample_index)) for r in requests
            ]
            processors.append(SeededSampler(temperature, gens))
        greedy = temperature == 0 and self._stacks()  # (probed outside the lock)
        with self.lock, torch.inference_mode():
            cached = {self._cache_kw: self._prefix_cache(prompts, shared)} if head else {}
            if greedy:  # rows leave the batch as they end
                out = greedy_decode(self.model, input_ids.to(self.device), mask.to(self.device), head=head,
                                    cache=cached.get(self._cache_kw), cache_kw=self._cache_kw, max_tokens=max_tokens,
                                    stops=stops, eos_ids=self.eos_ids, pad_id=self.pad_id,
                                    keep_logits=self._keep_logits)
            else:
                out = self.model.generate(
                    input_ids=input_ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    generation_config=self._generation_config(max_tokens),
                    logits_processor=processors,
                    stopping_criteria=StoppingCriteriaList([stops]),
                    **cached,
                )
        generated = out[:, width:].tolist()
        results = []
        for row, (p, r) in enumerate(zip(prompts, requests)):
            tokens = generated[row]
            end = next((k for k, t in enumerate(tokens) if t in self.eos_ids), None)
            used = len(tokens) if end is None else end + 1
            done_at = stops.done_at[row]
            if done_at is not None:
                used = min(used, done_at)
            kept = used if end is None else min(used, end)  # the EOS token itself is not text
            text = self.tokenizer.decode(tokens[:kept], skip_special_tokens=True)
            results.append(Generation(text=cut_at_stop(text, r.stop), prompt_tokens=len(p), completion_tokens=used))
        return results

    # ------------------------------------------------------------------------- log-probability

    def _pair_ids(self, contexts: list[str], continuations: list[str]) -> list[tuple[list[int], list[int]]]:
        """Encode (context, continuation) pairs separately, lm-eval style."""
        moved_ctx, moved_cont = [], []
        for ctx, cont in zip(contexts, continuations):
            spaces = len(ctx) - len(ctx.rstrip())
            if spaces:
                ctx, cont = ctx[:-spaces], ctx[-spaces:] + cont
            moved_ctx.append(ctx)
            moved_cont.append(cont)
        ctx_ids = self.tokenizer(moved_ctx, add_special_tokens=False)["input_ids"]
        cont_ids = self.tokenizer(moved_cont, add_special_tokens=False)["input_ids"]
        pairs = []
        for c, k in zip(ctx_ids, cont_ids):
            c = self._bos + c
            pairs.append((c or list(self._empty_context), k))
        return pairs

    def logprob(self, requests: list[LogprobRequest]) -> list[LogprobResult]:
        """Log-probability of each continuation given its context (lm-eval's loglikelihood).

        Context and continuation are tokenized separately and concatenated (trailing whitespace
        of the context moves to the continuation; BOS is prepended when the tokenizer adds one).
        Inputs longer than the model's window lose context from the left.

        Args:
            requests: the requests.

        Returns:
            One LogprobResult per request, in order.
        """
        import torch

        if not requests:
            return []
        pairs = self._pair_ids([r.context for r in requests], [r.continuation for r in requests])
        self._warn_cut(max(len(c) + len(k) for c, k in pairs), self.max_length + 1)
        wholes = [(c + k)[-(self.max_length + 1) :] for c, k in pairs]
        scored = [min(len(k), len(w) - 1) for (_, k), w in zip(pairs, wholes)]
        results: list[LogprobResult | None] = [None] * len(requests)
        todo = []
        for i, n in enumerate(scored):
            if n == 0:
                results[i] = LogprobResult(logprob=0.0, n_tokens=0, is_greedy=True, prompt_tokens=len(wholes[i]))
            else:
                todo.append(i)
        lengths = [len(w) - 1 for w in wholes]
        contexts, keep = {i: wholes[i][:-1] for i in todo}, self._stacks() and reuse_enabled()
        for batch, pre in plan_batches(todo, contexts, dict(enumerate(lengths)), kept=self.prefixes,
                                       stack=self._stacks(), batch_rows=self.batch_size, stack_rows=self.stack_rows,
                                       batch_tokens=self.batch_tokens,
                                       limits={i: lengths[i] - scored[i] for i in todo}):
            # each row: its cached prefix (``shared`` tokens, none of them scored), then its own tokens
            shared = [pre[i] for i in batch]
            starts = [lengths[i] - scored[i] - n for i, n in zip(batch, shared)]  # first position that predicts
            ends = [lengths[i] - n for i, n in zip(batch, shared)]
            # and, where the window allows, the answer's last token: what greedy decoding would say after it
            after = [int(keep and len(wholes[i]) <= self.max_length) for i in batch]
            lo, hi, head = min(starts), max(e + a for e, a in zip(ends, after)), max(shared)
            input_ids = torch.full((len(batch), hi), self.pad_id, dtype=torch.long)
            for row, (i, n) in enumerate(zip(batch, shared)):
                input_ids[row, : ends[row] + after[row]] = torch.tensor(wholes[i][n : lengths[i] + after[row]])
            kwargs: dict[str, Any] = {"logits_to_keep": torch.arange(lo, hi, device=self.device)} \
                if self._keep_logits else {}
            # Right padding under a causal mask: real tokens never attend to the padding after them, so without
            # prefixes no attention mask is needed (and the fast causal kernel applies); with them, the mask hides
            # the padding before each row's prefix and positions go on from it.
            with self.lock, torch.inference_mode():
                if head:
                    mask = torch.zeros((len(batch), head + hi), dtype=torch.long)
                    for row, n in enumerate(shared):
                        mask[row, head - n :] = 1
                    kwargs.update(attention_mask=mask.to(self.device), position_ids=torch.stack(
                        [torch.arange(n, n + hi) for n in shared]).to(self.device))
                    kwargs[self._cache_kw] = self._prefix_cache([wholes[i] for i in batch], shared)
                logits = self.model(input_ids=input_ids.to(self.device), use_cache=bool(head), **kwargs).logits
                for row, i in enumerate(batch):  # keep each whole prompt's own keys and values for its answer
                    if keep and shared[row] and starts[row] > 0:
                        self.rows.put(wholes[i][: lengths[i] - scored[i]], shared[row],
                                      row_slices(kwargs[self._cache_kw], row, head, head + starts[row]))
            if not self._keep_logits:
                logits = logits[:, lo:hi]
            for row, i in enumerate(batch):
                n = scored[i]
                rows = logits[row, starts[row] - lo : ends[row] - lo].float().log_softmax(-1)
                target = torch.tensor(wholes[i][-n:], device=rows.device)
                picked = rows.gather(1, target[:, None]).squeeze(1)
                greedy = bool((rows.argmax(-1) == target).all())
                results[i] = LogprobResult(logprob=float(picked.sum()), n_tokens=n, is_greedy=greedy,
                                           prompt_tokens=len(wholes[i]))
                if greedy and after[row]:  # then greedy decoding of the context gives the answer, then this token
                    self.answers.put(wholes[i][:-n], wholes[i][-n:], int(logits[row, ends[row] - lo].argmax()))
        return [r for r in results if r is not None]

