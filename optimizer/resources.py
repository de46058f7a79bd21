"""Local resources shared by every run: the on-disk response cache and the embedded models.

Part of the public API (re-exported by :mod:`optimizer.api`); the work is done in
``optimizer.models``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from optimizer.models.embedded import EmbeddedStatus

__all__ = ["CacheStats", "EmbeddedStatus", "cache_stats", "clear_cache", "list_models", "pull_model"]

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
    recreated: bool = False
    """The cache was damaged and :func:`clear_cache` made a new, empty one (``deleted`` is then unknown, 0)."""


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
        The cache's path and how many responses were deleted; a damaged cache file is replaced by an empty one
        (``recreated``), so that this is always the way out.
    """
    from optimizer.models.cache import CorruptCache, ResponseCache

    try:
        cache = ResponseCache()
    except CorruptCache:
        cache = ResponseCache.recreate()
        cache.close()
        return CacheStats(path=str(cache.path), responses={}, recreated=True)
    try:
        return CacheStats(path=str(cache.path), responses={}, deleted=cache.clear())
    finally:
        cache.close()


def list_models() -> list[EmbeddedStatus]:
    """The embedded models and whether each is downloaded; nothing is downloaded.

    Returns:
        One entry per model (``embedded:NAME``), the default first: kind, size, license, source, local copy.
    """
    from optimizer.models.embedded import list_embedded

    return list_embedded()


def pull_model(name: str | None = None, *, progress: Callable[[str], None] | None = None) -> Path:
    """Download an embedded model into the cache (nothing happens when it is already there).

    Args:
        name: a name from :func:`list_models` (default: the default model).
        progress: called with each line of progress text.

    Returns:
        The model's file or folder.
    """
    from optimizer.models.embedded import DEFAULT_EMBEDDED, ensure

    return ensure(name or DEFAULT_EMBEDDED, progress=progress)
