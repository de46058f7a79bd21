"""Starting ``apo serve``: the app on uvicorn, bound to 127.0.0.1 unless asked otherwise."""

from __future__ import annotations

import socket
import sys

from optimizer.service.auth import load_or_create_token
from optimizer.service.models import ServiceSettings

__all__ = ["serve"]


def serve(settings: ServiceSettings, host: str = "127.0.0.1", port: int = 8765) -> None:
    """Run the server until it is stopped (Ctrl-C or SIGTERM; running jobs resume on the next start).

    The first line on stdout is ``apo serve: listening on http://HOST:PORT`` (with the real port when ``port``
    is 0), then where the token is kept.

    Args:
        settings: the server's settings.
        host: the interface to bind (``127.0.0.1``: this machine only).
        port: the TCP port (0: any free one).
    """
    import uvicorn

    from optimizer.service.app import create_app

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
