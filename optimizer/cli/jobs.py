"""``apo optimize``, ``apo resume`` and ``apo eval``: jobs and single scores, through :mod:`optimizer.api`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from optimizer import api
from optimizer.cli.parser import JOB_ARGS
from optimizer.cli.render import out, render_autoprompt_passes, render_estimate, render_eval, render_result
from optimizer.config import RunConfig

__all__ = ["cmd_eval", "cmd_optimize", "cmd_resume", "job_config", "typed_options"]


def typed_options(args: argparse.Namespace) -> dict[str, Any]:
    """The job options typed on the command line, by their :meth:`RunConfig.from_options` names.

    Args:
        args: parsed ``apo optimize`` arguments (options not typed are absent from them).

    Returns:
        ``{name: value}`` for every option given.
    """
    return {name: value for name, value in vars(args).items() if name not in JOB_ARGS}


def job_config(args: argparse.Namespace) -> RunConfig:
    """The job of an ``apo optimize`` command: the ``--config`` file, if any, with the typed options over it.

    Args:
        args: parsed ``apo optimize`` arguments.

    Returns:
        The validated configuration.
    """
    task = getattr(args, "task", None)
    if getattr(args, "job_file", None):
        return RunConfig.from_file(args.job_file, task=task, **typed_options(args))
    return RunConfig.from_options(task, **typed_options(args))


def cmd_optimize(args: argparse.Namespace) -> int:
    """apo optimize."""
    config = job_config(args)
    as_json = getattr(args, "json", False)
    if getattr(args, "dry_run", False):
        if config.searcher == "autoprompt":
            render_autoprompt_passes(config)
            return 0
        est = api.estimate(config)
        if as_json:
            print(json.dumps({**est.model_dump(), "calls": est.calls}, indent=2))
        else:
            render_estimate(est)
        return 0
    data = api.optimize(config, runs_dir=args.runs_dir, progress=True).model_dump(mode="json")
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render_result(data)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """apo resume."""
    run = api.run_info(args.run_id, args.runs_dir)
    if run.result and run.result.get("status") == "complete":
        out.print(f"run {run.id} is already complete")
        render_result(run.result)
        return 0
    render_result(api.resume(args.run_id, runs_dir=args.runs_dir, progress=True).model_dump(mode="json"))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """apo eval."""
    res = api.evaluate(args.task, args.prompt, args.model, split=args.split, shots=args.shots, metric=args.metric,
                       template=args.execution_style, data_dir=args.data_dir, seed=args.seed, limit=args.limit,
                       base_url=args.base_url, request_timeout=args.request_timeout, concurrency=args.concurrency)
    if args.json:
        print(res.model_dump_json(indent=2))
    else:
        render_eval(res)
    return 0
