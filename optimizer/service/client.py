"""The Python client of ``apo serve``.

Example::

    from optimizer import ApoClient

    client = ApoClient("http://127.0.0.1:8765", token)      # or APO_SERVER / APO_TOKEN
    job = client.submit("capitalize_words", target="fake:upper", rounds=1)
    for item in client.watch(job):                            # the run's events as they are written
        print(item.line, item.event["type"])
    print(client.result(job)["best"]["text"])

The server's refusals raise :class:`~optimizer.errors.UsageError` (a 4xx: a bad job, a wrong token, an unknown
job, a job not finished) and its failures :class:`~optimizer.errors.ApoError`, with the server's message.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from optimizer.errors import ApoError, ServiceError, UsageError
from optimizer.service.models import StreamEvent
from optimizer.tasks.task import Task

__all__ = ["ApoClient", "task_upload"]

FINAL = ("complete", "partial", "failed", "cancelled")


def task_upload(task: Task) -> dict[str, Any]:
    """A task built in memory as the ``task`` of a job request (its fields and examples).

    Args:
        task: the task.

    Returns:
        ``{"spec": {...}, "examples": {"train": [...], "dev": [...], "test": [...]}}``.
    """
    spec = task.model_dump(mode="json", exclude={"train", "dev", "test"}, exclude_none=True)
    examples = {split: [ex.model_dump(mode="json") for ex in task.split(split)] for split in ("train", "dev", "test")}
    return {"spec": spec, "examples": examples}


def _message(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    if isinstance(detail, list):  # a validation error in FastAPI's own shape
        detail = "; ".join(f"{'.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}" for d in detail)
    return str(detail or response.text or response.reason_phrase)


class ApoClient:
    """A client of one ``apo serve``.

    Args:
        url: the server (default ``$APO_SERVER``), e.g. ``http://127.0.0.1:8765``.
        token: its bearer token (default ``$APO_TOKEN``; the server keeps it in ``<runs dir>/service.token``).
        timeout: seconds to wait for one response.
        transport: an httpx transport (tests).
    """

    def __init__(self, url: str | None = None, token: str | None = None, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        url = url or os.environ.get("APO_SERVER")
        token = token or os.environ.get("APO_TOKEN")
        if not url:
            raise UsageError("no server given: pass the URL of `apo serve` (--server URL or APO_SERVER), e.g. "
                             "http://127.0.0.1:8765")
        if not token:
            raise UsageError("no token given: pass --token / --token-file or set APO_TOKEN (the server wrote it to "
                             "its token file, <runs dir>/service.token by default)")
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout,
                                  transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ApoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApoError(f"cannot reach the apo server at {self.url} ({type(exc).__name__}: {exc}); is `apo "
                           "serve` running there?") from None
        if response.status_code >= 500:
            raise ApoError(f"the apo server failed ({response.status_code}): {_message(response)}")
        if response.status_code >= 400:
            raise ServiceError(_message(response), response.status_code)
        return response.json()

    def submit(self, task: str | Path | Task | dict[str, Any], *, config: dict[str, Any] | None = None,
               **options: Any) -> str:
        """Queue a job.

        Args:
            task: a task name the server knows, a local task folder (a :class:`~pathlib.Path`) or :class:`Task`
                (sent whole), or ``{"spec": ..., "examples": ...}``.
            config: the job's options as one mapping (flat names or the nested shape).
            **options: options by the names of :func:`optimizer.optimize` (``target``, ``rounds``, ``max_calls`` …),
                overriding ``config``.

        Returns:
            The job id.
        """
        if isinstance(task, Path):
            from optimizer.tasks.task import load_task

            task = load_task(task)
        body = {"task": task_upload(task) if isinstance(task, Task) else task, "config": {**(config or {}), **options}}
        return str(self._request("POST", "/jobs", json=body)["id"])

    def get(self, job_id: str) -> dict[str, Any]:
        """One job: state, progress, usage, cost, run id, verdict once done (see ``JobView``)."""
        return dict(self._request("GET", f"/jobs/{job_id}"))

    def list(self) -> list[dict[str, Any]]:
        """Every job, oldest first."""
        return list(self._request("GET", "/jobs"))

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a job: a queued one at once, a running one at its next model call (it keeps a partial result)."""
        return dict(self._request("POST", f"/jobs/{job_id}/cancel"))

    def result(self, job_id: str) -> dict[str, Any]:
        """A finished job's result.json (a :class:`ServiceError` with status 409 before it ends)."""
        return dict(self._request("GET", f"/jobs/{job_id}/result"))

    def export(self, job_id: str) -> dict[str, Any]:
        """A finished job's shipped prompt as ``apo export --format json`` writes it."""
        return dict(self._request("GET", f"/jobs/{job_id}/export"))

    def leaderboard(self) -> dict[str, Any]:
        """The leaderboard of the server's runs (as ``build_leaderboard`` returns it, as JSON)."""
        return dict(self._request("GET", "/leaderboard"))

    def wait(self, job_id: str, timeout: float | None = None, poll: float = 0.5) -> dict[str, Any]:
        """Wait until a job has ended.

        Args:
            job_id: the job.
            timeout: the most seconds to wait (None: no limit).
            poll: seconds between looks.

        Returns:
            The job as :meth:`get` returns it, in a final state.

        Raises:
            TimeoutError: it had not ended within ``timeout``.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job["state"] in FINAL:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {job['state']} after {timeout:g} s")
            time.sleep(poll)

    def watch(self, job_id: str, *, after: int = 0, retries: int = 5) -> Iterator[StreamEvent]:
        """The job's run events, in order, as they are written, until the job ends.

        A dropped connection is opened again with ``Last-Event-ID`` (the last line received), so nothing is
        missed or repeated.

        Args:
            job_id: the job.
            after: start after this line (0: from the first).
            retries: reconnections in a row without a new event before giving up.

        Yields:
            Each event with its line number.
        """
        last, failures = after, 0
        while True:
            try:
                for item in self._stream(job_id, last):
                    if item is None:
                        return
                    last, failures = item.line, 0
                    yield item
            except (httpx.TransportError, httpx.StreamError) as exc:
                failures += 1
                if failures > retries:
                    raise ApoError(f"lost the event stream of job {job_id} from {self.url} ({exc}); "
                                   f"watch again with after={last}") from None
                time.sleep(min(0.2 * 2 ** failures, 5.0))

    def _stream(self, job_id: str, last: int) -> Iterator[StreamEvent | None]:
        """One connection's events; None once the server said the job ended; returns if the stream just ends."""
        headers = {"Last-Event-ID": str(last), "Accept": "text/event-stream"}
        with self._http.stream("GET", f"/jobs/{job_id}/events", headers=headers, timeout=httpx.Timeout(
                self._http.timeout.connect, read=60.0)) as response:
            if response.status_code >= 400:
                response.read()
                raise ServiceError(_message(response), response.status_code)
            fields: dict[str, str] = {}
            for line in response.iter_lines():
                if line:
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    fields[name] = fields["data"] + "\n" + value if name == "data" and "data" in fields else value
                    continue
                if fields.get("event") == "end":
                    yield None
                    return
                if "id" in fields and "data" in fields:
                    yield StreamEvent(line=int(fields["id"]), event=json.loads(fields["data"]))
                fields = {}
        raise httpx.ReadError("the event stream closed before the job ended")
