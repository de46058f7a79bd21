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
import threading
from typing import Any

from optimizer.errors import CapabilityError
from optimizer.models.base import CHAT, GENERATE, LOGPROB, WHITEBOX
from optimizer.models.providers.prefix import (
    MIN_PREFIX,
    PrefixCache,
    cache_kwarg,
    common_prefix,
    prefix_cache_enabled,
    prefix_groups,
)
from optimizer.models.stops import cut_at_stop, first_stop
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["DEFAULT_BATCH_SIZE", "HFAdapter"]

DEFAULT_BATCH_SIZE = 16
"""Requests per forward pass."""

DEFAULT_BATCH_TOKENS = 16_384
"""Upper bound on batch rows times padded length, to bound memory with long prompts."""

_END_MARKERS = ("<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")
"""Special tokens that end a generation wherever the tokenizer defines them."""


def _seed_for(seed: int | None, sample_index: int) -> int:
    """A 63-bit generator seed from a request's seed and sample index."""
    digest = hashlib.sha256(f"{seed if seed is not None else 0}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _chunks(
    order: list[int], lengths: dict[int, int] | list[int], batch_size: int, batch_tokens: int
) -> list[list[int]]:
    """Split ``order`` into runs of at most ``batch_size`` whose rows x longest length fits ``batch_tokens``."""
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        grown = max(longest, lengths[i])
        if current and (len(current) >= batch_size or grown * (len(current) + 1) > batch_tokens):
            batches.append(current)
            current, grown = [], lengths[i]
        current.append(i)
        longest = grown
    if current:
        batches.append(current)
    return batches


class HFAdapter:
    """A transformers causal LM behind the adapter protocol (generate, logprob, white-box).

    Args:
        model: a loaded ``PreTrainedModel`` with a causal LM head, in eval mode.
        tokenizer: its tokenizer.
        name: the model id reported in results (the model string the user wrote).
        path: where the weights came from (a file, folder or Hub name), recorded in a run's
            provenance; None when unknown.
        batch_size: requests per forward pass.
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
        self.batch_tokens = DEFAULT_BATCH_TOKENS
        self.lock = lock or threading.Lock()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        eos = {tokenizer.eos_token_id, *_as_list(getattr(model.generation_config, "eos_token_id", None))}
        added = tokenizer.get_added_vocab()
        eos.update(added[t] for t in _END_MARKERS if t in added)
        self.eos_ids = sorted(i for i in eos if i is not None)
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        plain = tokenizer("a", add_special_tokens=False)["input_ids"]
        adds_bos = len(with_special) > len(plain) and with_special[0] == tokenizer.bos_token_id
        self._bos = [tokenizer.bos_token_id] if adds_bos else []
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self._empty_context = [prefix if prefix is not None else self.pad_id]
        self.max_length = _max_length(model, tokenizer)
        self._keep_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._cache_kw = cache_kwarg(model)
        self.prefixes = PrefixCache()
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

        Requests with the same ``max_tokens`` and ``temperature`` are batched (sorted by length,
        left-padded). Temperature 0 is greedy; otherwise each request samples from its own
        generator seeded by ``(seed, sample_index)``, so results do not depend on batching.

        Args:
            requests: the requests.

        Returns:
            One Generation per request, cut at the first stop string.

        Raises:
            CapabilityError: a chat request for a model without a chat template.
        """
        ids = [self._prompt_ids(r) for r in requests]
        results: list[Generation | None] = [None] * len(requests)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((r.max_tokens, r.temperature), []).append(i)
        for (max_tokens, temperature), members in groups.items():
            room = max(1, self.max_length - max_tokens)  # keep the prompt's end when too long
            prompts = {i: ids[i][-room:] for i in members}
            lengths = {i: len(p) + max_tokens for i, p in prompts.items()}
            batches = [b for group in prefix_groups(members, prompts)
                       for b in _chunks(sorted(group, key=lambda i: lengths[i]), lengths, self.batch_size,
                                        self.batch_tokens)]
            for batch in batches:
                outs = self._generate_batch(
                    [prompts[i] for i in batch], [requests[i] for i in batch], max_tokens, temperature
                )
                for i, out in zip(batch, outs):
                    results[i] = out
        return [r for r in results if r is not None]

    def _generate_batch(
        self, prompts: list[list[int]], requests: list[GenerateRequest], max_tokens: int, temperature: float
    ) -> list[Generation]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        shared = common_prefix(prompts) if len(prompts) > 1 and prefix_cache_enabled() else 0
        shared = shared if shared >= MIN_PREFIX else 0  # the prefix's cache; then padding; then each row's own
        width = shared + max(len(p) - shared for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, p in enumerate(prompts):
            input_ids[row, :shared], mask[row, :shared] = torch.tensor(p[:shared], dtype=torch.long), 1
            input_ids[row, width - len(p) + shared :] = torch.tensor(p[shared:], dtype=torch.long)
            mask[row, width - len(p) + shared :] = 1
        config = GenerationConfig(
            max_new_tokens=max_tokens,
            min_new_tokens=0,
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            no_repeat_ngram_size=0,
            temperature=1.0,
            top_k=None,
            top_p=1.0,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids or None,
        )
        stops = _StopStrings(self.tokenizer, [r.stop for r in requests], width)
        processors = LogitsProcessorList()
        if temperature > 0:
            gens = [
                torch.Generator(device=self.device).manual_seed(_seed_for(r.seed, r.sample_index)) for r in requests
            ]
            processors.append(_SeededSampler(temperature, gens))
        with self.lock, torch.inference_mode():
            cached = {self._cache_kw: self.prefixes.get(self.model, prompts[0][:shared], len(prompts),
                                                        self._keep_logits)} if shared else {}
            out = self.model.generate(
                input_ids=input_ids.to(self.device),
                attention_mask=mask.to(self.device),
                generation_config=config,
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
        batches = [b for group in prefix_groups(todo, wholes)
                   for b in _chunks(sorted(group, key=lambda i: -lengths[i]), lengths, self.batch_size,
                                    self.batch_tokens)]
        for batch in batches:
            lo = min(lengths[i] - scored[i] for i in batch)
            hi = max(lengths[i] for i in batch)
            # a prefix every row shares (none of it scored) runs once, from the prefix cache
            shared = min(common_prefix([wholes[i][:-1] for i in batch]), lo) \
                if len(batch) > 1 and prefix_cache_enabled() else 0
            shared = shared if shared >= MIN_PREFIX else 0
            input_ids = torch.full((len(batch), hi - shared), self.pad_id, dtype=torch.long)
            for row, i in enumerate(batch):
                input_ids[row, : lengths[i] - shared] = torch.tensor(wholes[i][shared:-1], dtype=torch.long)
            kwargs: dict[str, Any] = {"logits_to_keep": torch.arange(lo - shared, hi - shared, device=self.device)} \
                if self._keep_logits else {}
            # Right padding under a causal mask: real tokens never attend to the padding after
            # them, so no attention mask is needed (and the fast causal kernel applies).
            with self.lock, torch.inference_mode():
                if shared:
                    kwargs[self._cache_kw] = self.prefixes.get(self.model, wholes[batch[0]][:shared], len(batch),
                                                               self._keep_logits)
                logits = self.model(input_ids=input_ids.to(self.device), use_cache=bool(shared), **kwargs).logits
            if not self._keep_logits:
                logits = logits[:, lo - shared : hi - shared]
            for row, i in enumerate(batch):
                n, end = scored[i], lengths[i]
                rows = logits[row, end - n - lo : end - lo].float().log_softmax(-1)
                target = torch.tensor(wholes[i][-n:], device=rows.device)
                picked = rows.gather(1, target[:, None]).squeeze(1)
                results[i] = LogprobResult(
                    logprob=float(picked.sum()),
                    n_tokens=n,
                    is_greedy=bool((rows.argmax(-1) == target).all()),
                    prompt_tokens=len(wholes[i]),
                )
        return [r for r in results if r is not None]


# ------------------------------------------------------------------------------- helpers


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _max_length(model: Any, tokenizer: Any) -> int:
    """The model's context window (falls back to the tokenizer's, then 2048)."""
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else 2048


class _StopStrings:
    """Per-row stop strings, checked on the decoded completion after every step.

    Records for each row how many tokens had been generated when a stop string appeared.
    (A callable with the StoppingCriteria signature; transformers only calls it.)
    """

    def __init__(self, tokenizer: Any, stops: list[tuple[str, ...]], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [tuple(s for s in row if s) for row in stops]
        self.width = prompt_width
        self.done_at: list[int | None] = [None] * len(stops)

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        generated = input_ids[:, self.width :]
        n = generated.shape[1]
        for row, stops in enumerate(self.stops):
            if stops and self.done_at[row] is None:
                text = self.tokenizer.decode(generated[row], skip_special_tokens=True)
                if first_stop(text, stops) is not None:
                    self.done_at[row] = n
        return torch.tensor([d is not None for d in self.done_at], dtype=torch.bool, device=input_ids.device)


class _SeededSampler:
    """Samples each row with its own torch.Generator and forces that token (greedy then picks it)."""

    def __init__(self, temperature: float, generators: list[Any]) -> None:
        self.temperature = temperature
        self.generators = generators

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        chosen = torch.cat([torch.multinomial(probs[row], 1, generator=g) for row, g in enumerate(self.generators)])
        forced = torch.full_like(scores, float("-inf"))
        forced.scatter_(1, chosen[:, None], 0.0)
        return forced
