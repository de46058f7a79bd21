"""AutoPrompt's pure functions on tensors: which tokens may be triggers, HotFlip candidates, the label loss."""

from __future__ import annotations

import re
from collections.abc import Sequence, Set

import torch

from optimizer.search.autoprompt.cloze_model import Encoded, Verbalizer, special_ids

__all__ = ["candidate_tokens", "label_loss", "replace_trigger", "token_filter", "with_trigger"]

_BRACKETED = re.compile(r"^(\[.*\]|<.*>)$")


def token_filter(tokenizer, vocab_size: int, *, exclude: Set[int] = frozenset(), subwords: bool = True) -> torch.Tensor:
    """A boolean mask over the vocabulary of tokens that may not be trigger candidates.

    Excluded: special and added tokens, ``exclude`` (label words), tokens that are empty after
    decoding or look like markup (``[unused0]``, ``<pad>``), and with ``subwords`` the pieces that
    continue a word (WordPiece ``##…``; byte-level BPE and SentencePiece tokens without a leading
    space marker).

    Args:
        tokenizer: the model's tokenizer.
        vocab_size: rows of the embedding matrix.
        exclude: more ids to exclude.
        subwords: also exclude word-continuation pieces.

    Returns:
        ``mask[i]`` is True when token ``i`` is excluded.
    """
    mask = torch.zeros(vocab_size, dtype=torch.bool)
    tokens = tokenizer.convert_ids_to_tokens(list(range(min(vocab_size, len(tokenizer)))))
    style = "bpe" if any(t.startswith("Ġ") for t in tokens[:5000] if t) else (
        "sp" if any(t.startswith("▁") for t in tokens[:5000] if t) else "wordpiece")
    for i, tok in enumerate(tokens):
        if tok is None:
            mask[i] = True
            continue
        bare = tok.lstrip("Ġ▁").removeprefix("##")
        if not bare.strip() or _BRACKETED.match(tok):
            mask[i] = True
        elif subwords and ((style == "wordpiece" and tok.startswith("##"))
                           or (style == "bpe" and not tok.startswith("Ġ"))
                           or (style == "sp" and not tok.startswith("▁"))):
            mask[i] = True
    mask[len(tokens):] = True
    mask[list(special_ids(tokenizer, vocab_size) | {i for i in exclude if 0 <= i < vocab_size})] = True
    return mask


def candidate_tokens(gradient: torch.Tensor, embeddings: torch.Tensor, k: int,
                     excluded: torch.Tensor | None = None) -> list[int]:
    """The top-k replacement tokens for one trigger slot by ``-gradient . embedding`` (HotFlip).

    Args:
        gradient: the loss gradient at the slot's input embedding (hidden,).
        embeddings: the input embedding matrix (vocab x hidden).
        k: how many candidates.
        excluded: boolean mask of tokens never proposed (see :func:`token_filter`).

    Returns:
        ``k`` token ids (fewer if fewer are allowed), best first.
    """
    scores = -(embeddings.detach() @ gradient.to(embeddings.dtype))
    if excluded is not None:
        scores = scores.masked_fill(excluded.to(scores.device), float("-inf"))
    allowed = int(torch.isfinite(scores).sum())
    return scores.topk(min(k, allowed)).indices.tolist()


def replace_trigger(trigger: Sequence[int], position: int, token: int) -> tuple[int, ...]:
    """The trigger with slot ``position`` set to ``token``."""
    out = list(trigger)
    out[position] = token
    return tuple(out)


def label_loss(logprobs: torch.Tensor, gold: Sequence[int], verbalizer: Verbalizer) -> torch.Tensor:
    """Mean cross-entropy of the gold class over a batch (the class probability sums its label words).

    Args:
        logprobs: log-softmax over the vocabulary at the prediction slot (B x V).
        gold: gold class indices (or gold token ids when the verbalizer is open-vocabulary).
        verbalizer: the label words.

    Returns:
        A scalar tensor.
    """
    return -verbalizer.score(logprobs, gold)[0].mean()


def with_trigger(enc: Encoded, trigger: Sequence[int]) -> Encoded:
    """``enc`` with ``trigger`` in its trigger slots."""
    ids = list(enc.ids)
    for pos, tok in zip(enc.triggers, trigger):
        ids[pos] = tok
    return Encoded(tuple(ids), enc.triggers, enc.predict)
