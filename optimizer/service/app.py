"""The HTTP job API of ``apo serve`` (FastAPI): submit, list, watch, cancel jobs; read results, exports and the
leaderboard.

Errors are ``{"detail": "plain text"}``: 400 for a job the CLI would refuse too (the same message), 401 without
the token, 404 for an unknown job, 409 for a job not in a state that allows the request, 413 for a body over the
limit. Every endpoint but ``/healthz`` and the web view's pages (``/ui``, optimizer/service/web.py) needs
``Authorization: Bearer <token>``, the OpenAPI page (``/docs``) and schema (``/openapi.json``) included. There is
no CORS: browsers on other origins cannot call it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent

from optimizer.errors import ApoError, UsageError
from optimizer.service.auth import load_or_create_token, token_matches
from optimizer.service.journal import LineReader, job_view
from optimizer.service.limits import BodyLimit
from optimizer.service.models import JobView, ServiceSettings
from optimizer.service.scheduler import Scheduler
from optimizer.service.store import DB_NAME, FINAL_STATES, Job, JobStore, new_job_id
from optimizer.service.submit import parse_request, prepare_job
from optimizer.service.web import web_routes

__all__ = ["create_app"]

POLL_S = 0.25
"""How often the event stream looks for new lines of a run's log."""


def _missing(job_id: str) -> HTTPException:
    return HTTPException(404, f"no job {job_id!r} (GET /jobs lists them)")


class _Service:
    """The state the routes share: settings, the job table, the scheduler."""

    def __init__(self, settings: ServiceSettings, token: str) -> None:
        self.settings = settings
        self.token = token
        self.store = JobStore(settings.runs_dir / DB_NAME)
        self.scheduler = Scheduler(self.store, settings)
        self.submit_lock = threading.Lock()

    def job(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if job is None:
            raise _missing(job_id)
        return job

    def submit(self, body: bytes) -> Job:
        request = parse_request(body)
        with self.submit_lock:  # the total budget is checked and committed at once
            job = prepare_job(request, self.settings, self.store, new_job_id())
            self.store.add(job)
        self.scheduler.wake()
        return job

    def finished_run(self, job_id: str) -> str:
        """The run of a job that has ended with a result (else 409)."""
        job = self.job(job_id)
        if job.state not in FINAL_STATES:
            raise HTTPException(409, f"job {job_id} is {job.state}; its result is written when it ends "
                                     f"(GET /jobs/{job_id} shows its state)")
        if not job.run_id or not (self.settings.runs_dir / job.run_id / "result.json").exists():
            why = f": {job.error}" if job.error else " before its run wrote a result"
            raise HTTPException(409, f"job {job_id} is {job.state}{why}")
        return job.run_id

    async def stream(self, job_id: str, after: int) -> AsyncIterator[ServerSentEvent]:
        reader: LineReader | None = None
        while True:
            job = self.job(job_id)  # the state first: every line written before a final state is then read below
            if job.run_id and (reader is None or reader.path.parent.name != job.run_id):
                reader = LineReader(self.settings.runs_dir / job.run_id / "events.jsonl", after)
            for number, line in reader.read() if reader else []:
                yield ServerSentEvent(data=line, id=str(number))
            if job.state in FINAL_STATES:
                yield ServerSentEvent(data=json.dumps({"id": job.id, "state": job.state}), event="end")
                return
            await asyncio.sleep(POLL_S)


def _routes(service: _Service) -> APIRouter:
    router = APIRouter()
    runs_dir = service.settings.runs_dir

    @router.post("/jobs", status_code=201, summary="Submit a job")
    async def submit(request: Request) -> dict[str, str]:
        """Body: ``{"task": NAME | {"spec": {...}, "examples": {"train": [...], "dev": [...], "test": [...]}},
        "config": {OPTION: VALUE}}`` with the option names of ``apo optimize``. Returns the job's id."""
        job = await run_in_threadpool(service.submit, await request.body())
        return {"id": job.id, "state": job.state}

    @router.get("/jobs", summary="List jobs", response_model=list[JobView])
    def list_jobs() -> list[JobView]:
        """Every job, oldest first (without progress; GET /jobs/{id} has it)."""
        return [job_view(job, runs_dir, with_run=False) for job in service.store.all()]

    @router.get("/jobs/{job_id}", summary="One job", response_model=JobView)
    def get_job(job_id: str) -> JobView:
        """State, progress (scores recorded so far), usage and cost, and the verdict once done."""
        return job_view(service.job(job_id), runs_dir)

    @router.get("/jobs/{job_id}/events", summary="Stream a job's events (server-sent events)")
    async def events(job_id: str, last_event_id: int = Header(default=0, ge=0)) -> EventSourceResponse:
        """Each line of the run's events.jsonl as it is written, with ``id:`` its line number; send
        ``Last-Event-ID`` to continue after a line. Ends with an ``end`` event once the job has ended."""
        service.job(job_id)
        return EventSourceResponse(service.stream(job_id, last_event_id), ping=15)

    @router.post("/jobs/{job_id}/cancel", summary="Cancel a job", response_model=JobView)
    def cancel(job_id: str) -> JobView:
        """A queued job is cancelled at once; a running one stops at its next model call and writes a partial
        result (state ``cancelled``)."""
        job = service.job(job_id)
        if job.state in FINAL_STATES:
            raise HTTPException(409, f"job {job_id} has already ended ({job.state})")
        service.store.request_cancel(job_id)
        service.scheduler.wake()
        return job_view(service.job(job_id), runs_dir)

    @router.get("/jobs/{job_id}/result", summary="A finished job's result.json")
    def result(job_id: str) -> JSONResponse:
        """The run's result.json (409 until the job has ended)."""
        path = runs_dir / service.finished_run(job_id) / "result.json"
        return JSONResponse(json.loads(path.read_text(encoding="utf-8")))

    @router.get("/jobs/{job_id}/export", summary="A finished job's shipped prompt")
    def export(job_id: str) -> dict[str, Any]:
        """The prompt as the target saw it, with its manifest (``apo export RUN --format json``)."""
        from optimizer.export import export_prompt

        return export_prompt(service.finished_run(job_id), runs_dir).model_dump(mode="json")

    @router.get("/leaderboard", summary="The leaderboard of the server's runs", response_model=None)
    def leaderboard(format: str = "json") -> JSONResponse | HTMLResponse:
        """The best prompt per (task, searcher, target); ``?format=html`` gives the self-contained HTML page."""
        from optimizer.report.build import build_leaderboard
        from optimizer.report.html import render_html

        if format not in ("json", "html"):
            raise HTTPException(400, f"format: {format!r}; give json or html")
        board = build_leaderboard([runs_dir])
        if format == "html":
            return HTMLResponse(render_html(board))
        return JSONResponse(board.model_dump(mode="json"))

    return router


def _docs(app: FastAPI) -> APIRouter:
    router = APIRouter()

    @router.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="apo service")

    return router


def create_app(settings: ServiceSettings, token: str | None = None) -> FastAPI:
    """The ``apo serve`` application: its routes, and on start-up the job loop (recovering after a restart).

    Args:
        settings: the server's settings.
        token: the bearer token (default: read from, or created into, ``settings.token_path``).

    Returns:
        The ASGI app.
    """
    service = _Service(settings, token or load_or_create_token(settings.token_path))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.scheduler.start()
        yield
        service.scheduler.stop()

    def require_token(authorization: str | None = Header(default=None)) -> None:
        if not token_matches(authorization, service.token):
            raise HTTPException(401, "missing or wrong token: send `Authorization: Bearer TOKEN` (the token is in "
                                     "the server's token file)", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="apo", summary="Automatic prompt optimization as a service", lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)
    guard = [Depends(require_token)]
    app.include_router(_routes(service), dependencies=guard)
    app.include_router(_docs(app), dependencies=guard)
    app.include_router(web_routes())  # the pages only: their script calls the API above with the token

    @app.get("/healthz", summary="Liveness (no token needed)")
    def healthz() -> dict[str, bool]:
        return {"ok": True}

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        lines = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()]
        return JSONResponse({"detail": "; ".join(lines)}, status_code=400)

    @app.exception_handler(ApoError)
    async def apo_error(request: Request, exc: ApoError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400 if isinstance(exc, UsageError) else 500)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
