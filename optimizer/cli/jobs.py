"""``apo optimize``, ``apo resume`` and ``apo eval``: jobs and single scores, through :mod:`optimizer.api`."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console

from optimizer import api
from optimizer.cli.parser import JOB_ARGS, build_parser
from optimizer.cli.render import (
    out,
    render_autoprompt_passes,
    render_estimate,
    render_eval,
    render_eval_run,
    render_result,
)
from optimizer.config import RunConfig
from optimizer.errors import UsageError

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
    names = option_flags(args.command, getattr(args, "argv", None) or sys.argv[1:])
    if getattr(args, "job_file", None):
        return RunConfig.from_file(args.job_file, task=task, option_names=names, **typed_options(args))
    return RunConfig.from_options(task, option_names=names, **typed_options(args))


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
    data = api.optimize(config, runs_dir=args.runs_dir, progress=True, handle_interrupt=True).model_dump(mode="json")
    if as_json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render_result(data)
    return _exit_code(data)


def cmd_resume(args: argparse.Namespace) -> int:
    """apo resume."""
    run = api.run_info(args.run_id, args.runs_dir)
    if run.result and run.result.get("status") == "complete" and run.holder is None:
        out.print(f"run {run.id} is already complete")
        render_result(run.result)
        return 0
    data = api.resume(args.run_id, runs_dir=args.runs_dir, progress=True, allow_changed_data=args.allow_changed_data,
                      handle_interrupt=True).model_dump(mode="json")
    render_result(data)
    return _exit_code(data)


def _exit_code(result: dict) -> int:
    """0, or 130 for a run stopped by Ctrl-C (its partial result written; the message says how to continue)."""
    if result.get("status") != "interrupted":
        return 0
    Console(stderr=True).print(f"interrupted; partial result in {result['run_dir']}/result.json; continue with "
                               f"`apo resume {result['run_id']}`", highlight=False, markup=False, soft_wrap=True)
    return 130


_RUN_SETTINGS = {"model": "--model", "split": "--split", "shots": "--shots", "metric": "--metric", "seed": "--seed",
                 "limit": "--limit", "execution_style": "--template", "base_url": "--base-url",
                 "request_timeout": "--request-timeout", "concurrency": "--concurrency"}
"""``apo eval`` options that --from-run takes from the run instead."""


def cmd_eval(args: argparse.Namespace) -> int:
    """apo eval: one instruction on a split, or (--from-run) a run's shipped prompt re-scored on its test examples."""
    if args.from_run is not None:
        return _eval_from_run(args)
    if not args.task:
        raise UsageError("apo eval --prompt needs a TASK: `apo eval TASK --prompt TEXT` (or re-score a run's shipped "
                         "prompt with `apo eval --from-run RUN`)")
    res = api.evaluate(args.task, args.prompt, args.model or "embedded", split=args.split or "test", shots=args.shots,
                       metric=args.metric, template=args.execution_style or "completion", data_dir=args.data_dir,
                       seed=0 if args.seed is None else args.seed, limit=args.limit, base_url=args.base_url,
                       request_timeout=120.0 if args.request_timeout is None else args.request_timeout,
                       concurrency=4 if args.concurrency is None else args.concurrency,
                       cache=not args.no_cache)
    if args.json:
        print(res.model_dump_json(indent=2))
    else:
        render_eval(res)
    return 0


def _eval_from_run(args: argparse.Namespace) -> int:
    """apo eval --from-run: exit 0 when the run's test score is reproduced exactly, else 1."""
    given = [flag for name, flag in _RUN_SETTINGS.items() if getattr(args, name) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} cannot be combined with --from-run, which re-uses the run's own settings "
                         "so that its test score can be reproduced; drop them, or score the instruction your way with "
                         "`apo eval TASK --prompt TEXT ...`")
    res = api.evaluate_run(args.from_run, task=args.task, runs_dir=args.runs_dir, data_dir=args.data_dir,
                           cache=False if args.no_cache else None)
    if args.json:
        print(res.model_dump_json(indent=2))
    else:
        render_eval_run(res)
    return 0 if res.matches else 1


def option_flags(command: str, argv: list[str]) -> dict[str, str]:
    """How the user typed each option of ``command``: ``{dest: flag}``, the alias found in ``argv`` (else the
    first long flag), so that messages name options as they were typed."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    flags: dict[str, str] = {}
    for action in sub.choices[command]._actions:
        longs = [s for s in action.option_strings if s.startswith("--")]
        if not longs:
            continue
        typed = [s for s in longs if any(a == s or a.startswith(s + "=") for a in argv)]
        flags[action.dest] = (typed or longs)[0]
    return flags
