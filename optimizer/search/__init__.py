"""The built-in searchers, by the name ``--searcher`` takes; each is imported only when chosen.

A searcher is a class implementing :class:`optimizer.run.context.Searcher`; a built-in one is
built from its section of the run configuration (``RunConfig.<section>``). Adding one here is
all the engine needs; the command line and the job-file schema name its section's options.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

__all__ = ["BUILTIN_SEARCHERS", "BuiltinSearcher", "builtin_searcher"]


class BuiltinSearcher(NamedTuple):
    """Where a built-in searcher lives and which configuration section it takes."""

    module: str
    """The module defining it."""
    cls: str
    """The class name."""
    section: str
    """The ``RunConfig`` field holding its parameters."""
    extra: tuple[str, ...] = ()
    """Further ``RunConfig`` sections passed to its constructor, in order."""


BUILTIN_SEARCHERS: dict[str, BuiltinSearcher] = {
    "ape": BuiltinSearcher("optimizer.search.ape.search", "APESearch", "ape"),
    "baseline": BuiltinSearcher("optimizer.search.baseline", "BaselineSearch", "autoprompt"),
    "autoprompt": BuiltinSearcher("optimizer.search.autoprompt.search", "AutoPromptSearch", "autoprompt"),
    "demos": BuiltinSearcher("optimizer.search.demos", "DemoSearch", "demos"),
    "joint": BuiltinSearcher("optimizer.search.joint", "JointSearch", "joint", ("demos",)),
    "reflect": BuiltinSearcher("optimizer.search.reflect", "ReflectSearch", "reflect"),
    "prompt-tuning": BuiltinSearcher("optimizer.search.soft.search", "PromptTuningSearch", "soft"),
    "prefix-tuning": BuiltinSearcher("optimizer.search.soft.search", "PrefixTuningSearch", "soft"),
    "p-tuning": BuiltinSearcher("optimizer.search.soft.search", "PTuningSearch", "soft"),
    "lora": BuiltinSearcher("optimizer.search.soft.search", "LoRASearch", "soft"),
}
"""Name → built-in searcher."""


def builtin_searcher(name: str, config: Any) -> Any:
    """The built-in searcher ``name`` configured from ``config`` (a RunConfig); None when there is none by that name."""
    entry = BUILTIN_SEARCHERS.get(name)
    if entry is None:
        return None
    cls = getattr(importlib.import_module(entry.module), entry.cls)
    return cls(getattr(config, entry.section), *(getattr(config, s) for s in entry.extra))
