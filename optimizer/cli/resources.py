"""``apo tasks``, ``apo models`` and ``apo cache``: what is available on this machine, through the public API."""

from __future__ import annotations

import argparse

from optimizer import api, list_tasks, load_task
from optimizer.cli.render import out, render_cache, render_models, render_task, render_tasks

__all__ = ["cmd_cache", "cmd_models", "cmd_tasks"]


def cmd_tasks(args: argparse.Namespace) -> int:
    """apo tasks list|show."""
    if args.action == "list":
        render_tasks(list_tasks(args.data_dir))
    else:
        render_task(load_task(args.task, data_dir=args.data_dir))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """apo models list|pull."""
    if args.action == "pull":
        path = api.pull_model(args.name, progress=out.print)
        out.print(f"{args.name or 'embedded'}: {path}", highlight=False)
    else:
        render_models(api.list_models())
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    """apo cache stats|clear."""
    if args.action == "clear":
        cleared = api.clear_cache()
        if cleared.recreated:
            out.print(f"the cache file {cleared.path} was damaged; replaced it by an empty cache")
        else:
            out.print(f"deleted {cleared.deleted} cached responses from {cleared.path}")
    else:
        render_cache(api.cache_stats())
    return 0
