"""The shapes of ``apo serve``: its settings, a job request, and what the API says about a job."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["JobRequest", "JobView", "Progress", "ServiceSettings", "StreamEvent", "UploadedTask"]

_DOCS = ConfigDict(use_attribute_docstrings=True)


class ServiceSettings(BaseModel):
    """How one ``apo serve`` runs (its command-line options)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    runs_dir: Path
    """The runs folder: every job is an apo run in it; the job table and the token live there too."""
    workers: int = Field(default=1, ge=1)
    """Jobs running at once, each in its own worker process."""
    token_file: Path | None = None
    """The file holding the bearer token (default ``<runs dir>/service.token``; created with mode 0600)."""
    data_dir: Path | None = None
    """Folder of external task data whose task names jobs may use (also ``$APO_DATA_DIR``)."""
    max_job_calls: int | None = Field(default=None, ge=1)
    """The most model calls one job with an API model may budget (None: any, but a budget is still required)."""
    max_total_calls: int | None = Field(default=None, ge=1)
    """The most model calls all jobs with API models together may budget."""
    max_job_cost: float | None = Field(default=None, gt=0)
    """The most US dollars one job with an API model may budget."""
    max_total_cost: float | None = Field(default=None, gt=0)
    """The most US dollars all jobs with API models together may budget."""
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    """The largest request body accepted (413 above it)."""
    max_examples: int = Field(default=10_000, ge=1)
    """The most examples in one split of an uploaded task."""
    cancel_grace: float = Field(default=30.0, gt=0)
    """Seconds a cancelled job has to stop at its next model call and write its partial result before its worker
    process is killed."""
    executor: Literal["local", "ray"] = "local"
    """Where jobs run: ``local`` worker processes, or ``ray`` tasks (a local Ray instance, or ``ray_address``)."""
    ray_address: str | None = None
    """The Ray cluster to join with the ``ray`` executor (``auto``, ``ray://HOST:PORT``); None: a local instance."""

    @property
    def token_path(self) -> Path:
        """Where the token is kept."""
        return self.token_file or self.runs_dir / "service.token"


class UploadedTask(BaseModel):
    """A task sent with the job: the fields of a ``task.yaml`` and its examples."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    spec: dict[str, Any]
    """The task.yaml fields (``name``, ``metric``, ``instructions`` …; not ``data``: the examples come below)."""
    examples: dict[Literal["train", "dev", "test"], list[dict[str, Any]]]
    """Rows per split (``input``, ``output``, optional ``alternatives`` and ``id``); ``dev`` may be left out."""


class JobRequest(BaseModel):
    """The body of ``POST /jobs``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    task: str | UploadedTask
    """A bundled task name, a task name under the server's data folder, or a task sent whole."""
    config: dict[str, Any] = {}
    """The job's options: the flat names of ``apo optimize`` / ``optimize()`` (``target``, ``rounds``,
    ``max_calls`` …) or the nested shape of a run's config.json."""


class Progress(BaseModel):
    """What a job's run has recorded so far."""

    model_config = _DOCS

    scores: int = 0
    """Prompt x example scores recorded, every split together."""
    by_split: dict[str, int] = {}
    """Scores recorded per split (``dev``, ``test`` …)."""
    candidates: int = 0
    """Candidate prompts entered into the search."""
    events: int = 0
    """Lines in the run's events.jsonl (the last id of ``GET /jobs/{id}/events``)."""


class JobView(BaseModel):
    """A job as ``GET /jobs/{id}`` shows it."""

    model_config = _DOCS

    id: str
    """The job id."""
    state: str
    """``queued``, ``running``, ``complete``, ``partial``, ``failed`` or ``cancelled``."""
    task: str
    """The task's name."""
    created: float
    """Submission time (Unix seconds)."""
    started: float | None = None
    """When a worker last started on it."""
    finished: float | None = None
    """When it reached its final state."""
    run_id: str | None = None
    """The apo run doing the job (``apo runs show RUN_ID``, ``apo resume RUN_ID``)."""
    error: str | None = None
    """Why it failed."""
    cancel_requested: bool = False
    """Whether a cancel was asked for while it ran."""
    config: dict[str, Any] = {}
    """The job's options as validated (only those given)."""
    progress: Progress = Field(default_factory=Progress)
    """Scores recorded so far."""
    usage: dict[str, dict[str, Any]] = {}
    """Usage so far per role (calls, cache hits, tokens, seconds, cost)."""
    calls: int = 0
    """Provider calls so far, every role together."""
    tokens: int = 0
    """Tokens so far, every role together."""
    cost_usd: float = 0.0
    """Estimated dollars so far."""
    status: str | None = None
    """The run result's status once written (``complete``, ``partial``, ``interrupted``)."""
    verdict: str | None = None
    """Whether a finalist beat the incumbent, once the job is done."""
    best: str | None = None
    """The shipped prompt's instruction, once the job is done."""


class StreamEvent(BaseModel):
    """One event of a job's run as ``ApoClient.watch`` yields it."""

    model_config = _DOCS

    line: int
    """Its line number in the run's events.jsonl (the SSE ``id``)."""
    event: dict[str, Any]
    """The event as written (``type``: ``session``, ``candidate``, ``score``, ``usage``, ``done`` …)."""
