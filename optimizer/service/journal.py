"""What the API reads from a job's run: its progress and the lines of its events.jsonl, for the job view and the
server-sent event stream.

Only complete lines are read (a line is complete once it ends with a newline; the run appends whole batches
and a resume cuts a torn last line), so line numbers never change once given out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optimizer.service.models import JobView, Progress
from optimizer.service.store import Job

__all__ = ["LineReader", "job_view"]


class LineReader:
    """Reads the complete lines of a growing file, from a given line on, across calls.

    Example::

        reader = LineReader(path, after=10)   # line 11 is the first returned
        for number, line in reader.read():    # whatever is complete now; call again for more
            ...

    Args:
        path: the file (it may not exist yet).
        after: the number of lines already seen (the ``Last-Event-ID`` of a reconnecting client).
    """

    def __init__(self, path: Path, after: int = 0) -> None:
        self.path = path
        self.line = 0
        self.after = after
        self.offset = 0

    def read(self) -> list[tuple[int, str]]:
        """The complete lines written since the last call, numbered from 1, after ``after``."""
        if not self.path.exists():
            return []
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        if end == 0:
            return []
        self.offset += end
        out = []
        for raw in data[:end].splitlines():
            self.line += 1
            if self.line > self.after:
                out.append((self.line, raw.decode("utf-8", errors="replace")))
        return out


def _summary(path: Path) -> tuple[Progress, dict[str, Any]]:
    """The progress so far and the last usage snapshot of a run's events.jsonl."""
    progress = Progress()
    usage: dict[str, Any] = {}
    for _, line in LineReader(path).read():
        progress.events += 1
        try:
            event = json.loads(line)
        except ValueError:
            continue
        kind = event.get("type") if isinstance(event, dict) else None
        if kind == "score":
            progress.scores += 1
            split = str(event.get("split"))
            progress.by_split[split] = progress.by_split.get(split, 0) + 1
        elif kind == "candidate":
            progress.candidates += 1
        elif kind == "usage":
            usage = event
    return progress, usage


def _result(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def job_view(job: Job, runs_dir: Path, with_run: bool = True) -> JobView:
    """A job with its run's progress, usage, and (once written) its result's status, verdict and prompt.

    Args:
        job: the job.
        runs_dir: the runs folder.
        with_run: read the run's files (progress, usage, result); False gives the job table's fields only.

    Returns:
        The view ``GET /jobs/{id}`` returns.
    """
    view = JobView(id=job.id, state=job.state, task=job.task, created=job.created, started=job.started,
                   finished=job.finished, run_id=job.run_id, error=job.error,
                   cancel_requested=job.cancel_requested is not None, config=job.config)
    if not job.run_id or not with_run:
        return view
    run_dir = runs_dir / job.run_id
    view.progress, snapshot = _summary(run_dir / "events.jsonl")
    view.usage = snapshot.get("usage") or {}
    roles = [u for u in view.usage.values() if isinstance(u, dict)]
    view.calls = sum(int(u.get("calls", 0)) for u in roles)
    view.tokens = sum(int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) for u in roles)
    view.cost_usd = round(sum(float(u.get("cost_usd", 0.0) or 0.0) for u in roles), 6)
    result = _result(run_dir / "result.json")
    if result:
        view.status = result.get("status")
        view.verdict = (result.get("selection") or {}).get("verdict")
        view.best = (result.get("best") or {}).get("text")
        view.calls, view.tokens, view.cost_usd = result.get("calls", 0), result.get("tokens", 0), \
            result.get("cost_usd", 0.0)
    return view
