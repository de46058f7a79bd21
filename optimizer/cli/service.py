"""``apo serve``, ``apo submit`` and ``apo jobs``: the job server and its command-line client."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from optimizer import ApoClient
from optimizer.cli.service_parser import CLIENT_ARGS
from optimizer.errors import UsageError

__all__ = ["cmd_jobs", "cmd_serve", "cmd_submit"]

_EXIT = {"complete": 0, "partial": 0, "cancelled": 130, "failed": 1}


def cmd_serve(args: argparse.Namespace) -> int:
    """apo serve."""
    from optimizer.api import serve

    serve(args.runs_dir, host=args.host, port=args.port, workers=args.workers, token_file=args.token_file,
          data_dir=args.data_dir, max_job_calls=args.max_job_calls, max_total_calls=args.max_total_calls,
          max_job_cost=args.max_job_cost, max_total_cost=args.max_total_cost, max_body_bytes=args.max_body_bytes,
          max_examples=args.max_examples, cancel_grace=args.cancel_grace, executor=args.executor,
          ray_address=args.ray_address)
    return 0


def _client(args: argparse.Namespace) -> ApoClient:
    token = getattr(args, "token", None)
    token_file = getattr(args, "token_file", None) or (None if token else os.environ.get("APO_TOKEN_FILE"))
    if not token and token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--token-file {token_file}: cannot be read ({exc.strerror or exc})") from None
    return ApoClient(getattr(args, "server", None), token)


def _task_and_config(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """The task to send (a name, or a local folder as a Path) and the options (a job file's, with typed ones over)."""
    from optimizer.config import load_job_file

    config = load_job_file(args.job_file) if getattr(args, "job_file", None) else {}
    config.update({k: v for k, v in vars(args).items() if k not in CLIENT_ARGS})
    task = getattr(args, "task", None) or config.pop("task", None)
    config.pop("task", None)
    if task is None:
        raise UsageError("no task given: name a task the server knows, or a local task folder (or set task in the "
                         "--config file)")
    prompt = config.get("initial_prompt")
    if isinstance(prompt, str) and prompt.startswith("@"):  # read here, sent as text
        try:
            config["initial_prompt"] = Path(prompt[1:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"--initial-prompt {prompt}: cannot be read ({exc.strerror or exc})") from None
    local = Path(str(task))
    return (local if local.exists() else str(task)), config


def _print_event(line: int, event: dict[str, Any]) -> None:
    """One event as one line: its number, type and fields as JSON (model text escaped, never interpreted)."""
    rest = {k: v for k, v in event.items() if k not in ("type", "t")}
    text = json.dumps(rest, ensure_ascii=True)
    print(f"{line:>6} {event.get('type', '?'):<10} {text[:160] + ('…' if len(text) > 160 else '')}", flush=True)


def _watch(client: ApoClient, job_id: str) -> dict[str, Any]:
    for item in client.watch(job_id):
        _print_event(item.line, item.event)
    return client.get(job_id)


def _show(job: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(job, indent=2, ensure_ascii=False))
        return
    progress = job.get("progress") or {}
    asked = job.get("cancel_requested") and job["state"] == "running"
    lines = [f"job {job['id']}: {job['state']}" + (" (cancel requested)" if asked else ""),
             f"  task      {job['task']}", f"  run       {job.get('run_id') or '-'}",
             f"  progress  {progress.get('scores', 0)} scores, {progress.get('candidates', 0)} candidates",
             f"  usage     {job.get('calls', 0)} calls, {job.get('tokens', 0)} tokens, ${job.get('cost_usd', 0):.4f}"]
    if job.get("verdict"):
        lines.append(f"  verdict   {job['verdict']}")
    if job.get("best") is not None:
        lines.append(f"  best      {json.dumps(job['best'], ensure_ascii=True)}")
    if job.get("error"):
        lines.append(f"  error     {job['error']}")
    print("\n".join(lines))


def cmd_submit(args: argparse.Namespace) -> int:
    """apo submit."""
    task, config = _task_and_config(args)
    as_json = getattr(args, "json", False)
    with _client(args) as client:
        job_id = client.submit(task, config=config)
        if not (getattr(args, "wait", False) or getattr(args, "watch", False)):
            print(json.dumps({"id": job_id, "state": "queued"}) if as_json else job_id)
            return 0
        print(f"job {job_id} queued", flush=True)
        job = _watch(client, job_id) if getattr(args, "watch", False) else client.wait(job_id)
        if as_json and job["state"] in ("complete", "partial", "cancelled") and job.get("status"):
            print(json.dumps(client.result(job_id), indent=2, ensure_ascii=False))
        else:
            _show(job, as_json)
        return _EXIT.get(job["state"], 1)


def _list(jobs: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print(json.dumps(jobs, indent=2, ensure_ascii=False))
        return
    if not jobs:
        print("no jobs")
    for job in jobs:
        print(f"{job['id']}  {job['state']:<9}  {job['task']:<24}  {job.get('run_id') or '-'}")


def cmd_jobs(args: argparse.Namespace) -> int:
    """apo jobs list|show|watch|cancel."""
    with _client(args) as client:
        if args.action == "list":
            _list(client.list(), args.json)
        elif args.action == "show":
            _show(client.get(args.job_id), args.json)
        elif args.action == "cancel":
            _show(client.cancel(args.job_id), args.json)
        else:
            job = _watch(client, args.job_id)
            print(f"job {job['id']} ended: {job['state']}" + (f" ({job['error']})" if job.get("error") else ""))
            return _EXIT.get(job["state"], 1)
    return 0
