"""Checking a job request before it is queued: the same loaders and messages as ``apo optimize``, plus what a
server must refuse (files on the server, provider keys, API spending over its ceilings).

Every refusal is a :class:`~optimizer.errors.UsageError` whose text the API returns as ``{"detail": TEXT}``
with status 400 (413 for a body over the size limit).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from optimizer.config import RunConfig
from optimizer.errors import UsageError
from optimizer.service.models import JobRequest, ServiceSettings, UploadedTask
from optimizer.service.store import Job, JobStore
from optimizer.tasks.task import Task

__all__ = ["SERVER_SET", "UPLOADS", "check_models", "parse_request", "prepare_job"]

UPLOADS = "uploads"
"""The folder of the runs folder where uploaded tasks are written, one ``<job id>/`` each."""

SERVER_SET = {
    "data_dir": "the server's data folder (apo serve --data-dir) is the only one jobs read",
    "prices": "prices come from the server's own table ($APO_PRICES where the server runs)",
    "base_url": "API endpoints come from the server's environment ($OPENAI_BASE_URL where the server runs)",
    "task": "give the task as the request's \"task\", not inside \"config\"",
}
"""Options a request may not set, and why."""

_SECRET = re.compile(r"(^|_)(api_?key|key|secret|password|passwd|credentials?|auth|authorization|token|bearer)$",
                     re.IGNORECASE)
"""Option names that look like a credential (``api_key``, ``openai_api_key``, ``token`` …; not ``max_tokens``)."""


def parse_request(body: bytes) -> JobRequest:
    """The request body as a :class:`JobRequest`.

    Raises:
        UsageError: the body is not JSON, or not the shape ``{"task": ..., "config": {...}}``.
    """
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"the request body is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError('the request body must be a JSON object: {"task": NAME or {"spec": ..., "examples": ...}, '
                         '"config": {OPTION: VALUE}}')
    try:
        return JobRequest.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"] if not str(p).startswith(("str", "UploadedTask")))
            lines.append(f"{where or 'body'}: {err['msg'][0].lower()}{err['msg'][1:]}")
        raise UsageError("invalid request" + (":\n  " if len(lines) > 1 else " ") + "\n  ".join(lines)) from None


def _refuse_server_options(options: dict[str, Any]) -> None:
    for name in options:
        if _SECRET.search(name):
            raise UsageError(f"{name}: provider API keys are never taken from a request; the server reads them from "
                             "its own environment (OPENAI_API_KEY, ANTHROPIC_API_KEY …). Remove it")
        if name in SERVER_SET:
            raise UsageError(f"{name}: not settable by a request; {SERVER_SET[name]}")
    prompt = options.get("initial_prompt")
    if isinstance(prompt, str) and prompt.startswith("@"):
        raise UsageError("initial_prompt: @FILE reads a file on the server; send the prompt's text itself")


def _named_task(name: str, settings: ServiceSettings) -> tuple[str, Task]:
    from optimizer.tasks.loaders import LOADERS
    from optimizer.tasks.task import load_task

    names = LOADERS.names(settings.data_dir)
    if name not in names:
        raise UsageError(f"no task named {name!r} on this server; available: {', '.join(names) or 'none'}; or send "
                         'the task itself: {"task": {"spec": {...task.yaml fields...}, "examples": {"train": [...], '
                         '"test": [...]}}}')
    return name, load_task(name, data_dir=settings.data_dir)


def _uploaded_task(upload: UploadedTask, folder: Path, settings: ServiceSettings) -> tuple[str, Task]:
    """Write an uploaded task as a task folder (task.yaml + one JSONL file per split) and load it."""
    from optimizer.tasks.task import load_task

    if "data" in upload.spec:
        raise UsageError('task.spec.data: leave it out; the examples go in task.examples ({"train": [...], ...})')
    for split in ("train", "test"):
        if not upload.examples.get(split):
            raise UsageError(f"task.examples.{split}: required, with at least one example")
    for split, rows in upload.examples.items():
        if len(rows) > settings.max_examples:
            raise UsageError(f"task.examples.{split}: {len(rows)} examples; this server takes at most "
                             f"{settings.max_examples} per split")
    folder.mkdir(parents=True)
    data = {split: f"{split}.jsonl" for split in upload.examples}
    for split, rows in upload.examples.items():
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        (folder / data[split]).write_text(text, encoding="utf-8")
    (folder / "task.yaml").write_text(yaml.safe_dump({**upload.spec, "data": data}, allow_unicode=True),
                                      encoding="utf-8")
    try:
        task = load_task(folder)
    except UsageError as exc:
        raise UsageError(str(exc).replace(str(folder) + "/", "task ").replace(str(folder), "task")) from None
    return str(folder.resolve()), task


def check_models(config: RunConfig) -> bool:
    """Check the model strings; returns whether the job calls an API model."""
    from optimizer.models.registry import API_PROVIDERS, parse_model
    from optimizer.search import BUILTIN_SEARCHERS

    if config.searcher not in BUILTIN_SEARCHERS:
        raise UsageError(f"searcher: {config.searcher!r} is not built into apo; choose one of "
                         f"{', '.join(BUILTIN_SEARCHERS)}")
    providers = {parse_model(spec)[0] for spec in (config.target, config.proposer or config.target)}
    return bool(providers & API_PROVIDERS)


def _check_budget(config: RunConfig, settings: ServiceSettings, store: JobStore) -> tuple[int | None, float | None]:
    """Refuse a job with an API model whose budget is missing or over the server's ceilings."""
    calls, cost = config.budget.max_calls, config.budget.max_cost
    if calls is None and cost is None:
        raise UsageError("a job with an API model needs a budget: give max_calls (or max_cost)"
                         + (f" of at most {settings.max_job_calls} calls" if settings.max_job_calls else ""))
    if calls is not None and settings.max_job_calls is not None and calls > settings.max_job_calls:
        raise UsageError(f"max_calls: {calls} is over this server's limit of {settings.max_job_calls} per job")
    if cost is not None and settings.max_job_cost is not None and cost > settings.max_job_cost:
        raise UsageError(f"max_cost: {cost:g} is over this server's limit of {settings.max_job_cost:g} USD per job")
    if settings.max_job_calls is not None and calls is None:
        raise UsageError(f"max_calls: required on this server for a job with an API model (at most "
                         f"{settings.max_job_calls})")
    used_calls, used_cost = store.committed()
    if calls is not None and settings.max_total_calls is not None and used_calls + calls > settings.max_total_calls:
        raise UsageError(f"max_calls: {calls} would take the calls budgeted by this server's API-model jobs to "
                         f"{used_calls + calls}, over its total of {settings.max_total_calls}; ask for at most "
                         f"{max(0, settings.max_total_calls - used_calls)}")
    if cost is not None and settings.max_total_cost is not None and used_cost + cost > settings.max_total_cost:
        raise UsageError(f"max_cost: {cost:g} would take the dollars budgeted by this server's API-model jobs over "
                         f"its total of {settings.max_total_cost:g}")
    return calls, cost


def prepare_job(request: JobRequest, settings: ServiceSettings, store: JobStore, job_id: str) -> Job:
    """Validate a job request as ``apo optimize`` would, and build its queued job.

    Args:
        request: the parsed body.
        settings: the server's settings (limits, data folder).
        store: the job table (for the total budget already committed).
        job_id: the new job's id (an uploaded task is written under ``<runs dir>/uploads/<job id>/``).

    Returns:
        The job, not yet stored.

    Raises:
        UsageError: anything ``apo optimize`` would refuse, or the server refuses, with the same message.
    """
    from optimizer.run.preflight import check_job

    _refuse_server_options(request.config)
    folder = settings.runs_dir / UPLOADS / job_id
    try:
        if isinstance(request.task, UploadedTask):
            ref, task = _uploaded_task(request.task, folder, settings)
        else:
            ref, task = _named_task(request.task, settings)
        config = RunConfig.from_options(ref, **request.config)
        api = check_models(config)
        check_job(config, task)
        calls, cost = _check_budget(config, settings, store) if api else (None, None)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Job(id=job_id, created=time.time(), state="queued", task=task.name,
               config=config.model_dump(mode="json", exclude_unset=True), api_calls=calls, api_cost=cost)
