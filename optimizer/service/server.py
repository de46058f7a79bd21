"""Starting ``apo serve``: the app on uvicorn, bound to 127.0.0.1 unless asked otherwise."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from optimizer.errors import UsageError
from optimizer.service.auth import load_or_create_token
from optimizer.service.models import ServiceSettings

__all__ = ["serve"]


def _settings(runs_dir: str | Path | None, options: dict[str, Any]) -> ServiceSettings:
    from optimizer.run.store import runs_dir as resolve_runs_dir

    data_dir = options.get("data_dir")
    if data_dir is not None and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir}: not a folder")
    try:
        fields: dict[str, Any] = {k: Path(v).resolve() if k in ("data_dir", "token_file") and v is not None else v
                                  for k, v in options.items()}
        return ServiceSettings.model_validate({"runs_dir": resolve_runs_dir(runs_dir).resolve(), **fields})
    except ValidationError as exc:
        raise UsageError("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())) from None


def serve(runs_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 8765,
          **options: Any) -> None:
    """Run the job server until it is stopped (Ctrl-C or SIGTERM; running jobs resume on the next start).

    The first line on stdout is ``apo serve: listening on http://HOST:PORT`` (with the real port when ``port``
    is 0), then where the token is kept.

    Args:
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``); the job table and token live there.
        host: the interface to bind (``127.0.0.1``: this machine only).
        port: the TCP port (0: any free one).
        **options: the other fields of :class:`~optimizer.service.models.ServiceSettings` (``workers``,
            ``token_file``, ``data_dir``, ``max_job_calls``, ``max_total_calls``, ``max_job_cost``,
            ``max_total_cost``, ``max_body_bytes``, ``max_examples``, ``cancel_grace``).
    """
    import uvicorn

    from optimizer.service.app import create_app

    settings = _settings(runs_dir, options)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    token = load_or_create_token(settings.token_path)
    app = create_app(settings, token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them: none is refused after the line below
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    print(f"apo serve: listening on http://{shown}:{bound}", flush=True)
    print(f"apo serve: token in {settings.token_path} (send `Authorization: Bearer TOKEN`); runs in "
          f"{settings.runs_dir}; {settings.workers} job(s) at once", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"apo serve: warning: bound to {host}, reachable from other machines; put it behind TLS",
              file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
