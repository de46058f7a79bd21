"""Per-row decoding for batched generation: stop strings, seeded sampling, and greedy decoding that drops ended rows.

transformers calls these during ``generate``; each row of a batch keeps its own stop strings and its own random
generator, so a row's result does not depend on the rows batched with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimizer.models.stops import first_stop

__all__ = ["SeededSampler", "StopStrings", "as_list", "context_window", "greedy_decode", "output_cache"]


def output_cache(out: Any) -> Any:
    """The key/value cache a forward pass returned (``past_key_values``, the name before transformers 5)."""
    return out["cache"] if "cache" in out else out["past_key_values"]


class StopStrings:
    """Per-row stop strings, checked on the decoded completion after every step.

    Records for each row how many tokens had been generated when a stop string appeared.
    (A callable with the StoppingCriteria signature; transformers only calls it.)
    """

    def __init__(self, tokenizer: Any, stops: list[tuple[str, ...]], prompt_width: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [tuple(s for s in row if s) for row in stops]
        self.width = prompt_width
        self.done_at: list[int | None] = [None] * len(stops)

    def __call__(self, input_ids: Any, scores: Any, rows: Sequence[int] | None = None, **kwargs: Any) -> Any:
        """Whether each row has stopped; ``rows``: check only these (the others have ended otherwise)."""
        import torch

        generated = input_ids[:, self.width :]
        n = generated.shape[1]
        for row in range(len(self.stops)) if rows is None else rows:
            stops = self.stops[row]
            if stops and self.done_at[row] is None:
                text = self.tokenizer.decode(generated[row], skip_special_tokens=True)
                if first_stop(text, stops) is not None:
                    self.done_at[row] = n
        return torch.tensor([d is not None for d in self.done_at], dtype=torch.bool, device=input_ids.device)


class SeededSampler:
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


def greedy_decode(
    model: Any, input_ids: Any, mask: Any, *, head: int, cache: Any, cache_kw: str, max_tokens: int,
    stops: StopStrings, eos_ids: Sequence[int], pad_id: int, keep_logits: bool
) -> Any:
    """Greedy decoding that drops each row from the batch once it has ended (an end token, a stop string), so an
    ended row costs nothing more; otherwise what ``model.generate`` does greedily, and returns the same: the
    prompt, then each row's tokens, ``pad_id`` after its end.

    Args:
        model: the causal LM (the caller holds its lock and inference mode).
        input_ids: the batch, left-padded; its first ``head`` positions are in ``cache``.
        mask: 1 on real tokens, 0 on padding; positions are counted from it.
        head: positions already in ``cache`` (0: none, and ``cache`` None).
        cache: a key/value cache whose rows can be selected (``batch_select_indices``), or None.
        cache_kw: the name under which the model takes it.
        max_tokens: tokens generated at most per row.
        stops: each row's stop strings (it records where each row stopped).
        eos_ids: end tokens.
        pad_id: the padding token.
        keep_logits: the model takes ``logits_to_keep`` (only the last position's logits are computed).
    """
    import torch

    rows, width = input_ids.shape
    device = input_ids.device
    seq = torch.full((rows, width + max_tokens), pad_id, dtype=torch.long, device=device)
    seq[:, :width] = input_ids
    alive = torch.arange(rows, device=device)
    ends = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    nxt_pos = mask.sum(-1)
    step_ids, positions = input_ids[:, head:], (mask.cumsum(-1) - 1).clamp(min=0)[:, head:]
    extra: dict[str, Any] = {"logits_to_keep": 1} if keep_logits else {}
    steps = 0
    while steps < max_tokens:
        kwargs = {cache_kw: cache} if cache is not None else {}
        out = model(input_ids=step_ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs, **extra)
        cache = output_cache(out)
        nxt = out.logits[:, -1].argmax(-1)
        seq[alive, width + steps] = nxt
        steps += 1
        done = stops(seq[:, : width + steps], None, rows=alive.tolist())[alive] | torch.isin(nxt, ends)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            alive, mask, nxt, nxt_pos = alive[keep], mask[keep], nxt[keep], nxt_pos[keep]
        mask = torch.cat([mask, torch.ones((len(alive), 1), dtype=mask.dtype, device=device)], dim=1)
        step_ids, positions, nxt_pos = nxt[:, None], nxt_pos[:, None], nxt_pos + 1
    return seq[:, : width + steps]


def context_window(model: Any, tokenizer: Any) -> int:
    """The model's context window (falls back to the tokenizer's, then 2048)."""
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else 2048


def as_list(value: Any) -> list[int]:
    """Token ids given as one id, a list or None, as a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
