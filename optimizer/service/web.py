"""The web view of ``apo serve``: a few static pages and one vanilla script, served without a token.

The pages hold no data: their script asks the JSON API for everything, with the token the user typed in
(kept in ``sessionStorage``) or passed as ``#token=...`` (a URL fragment never reaches the server or its logs).
Every text from a run is put into the page with ``textContent``, never as markup. The pages' Content-Security-Policy
allows only the server's own script and style, requests to the server itself, and the leaderboard's own script
(by its hash) inside the sandboxed ``srcdoc`` frame that shows it (scripts allowed, no same origin: the report's
script cannot reach the page, its token or the API).
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

__all__ = ["STATIC", "web_routes"]

STATIC = Path(__file__).with_name("static")
"""The pages and their script (package data of ``optimizer.service``)."""

_TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}


def _csp() -> str:
    from optimizer.report.html import SCRIPT

    board = base64.b64encode(hashlib.sha256(SCRIPT.encode()).digest()).decode()
    # The leaderboard frame (a srcdoc document) inherits this policy on top of its own: its script is allowed by
    # its hash, its inline style by 'unsafe-inline' (style only). frame-src 'none' does not apply to a srcdoc
    # frame; it refuses any other. No page may frame these (frame-ancestors, and X-Frame-Options for old browsers).
    return (f"default-src 'none'; script-src 'self' 'sha256-{board}'; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self'; frame-src 'none'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": _csp(), "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def web_routes() -> APIRouter:
    """``/ui`` (the jobs), ``/ui/jobs/{id}`` (one job, live), ``/ui/leaderboard`` and their static files."""
    router = APIRouter(include_in_schema=False)

    def page() -> Response:
        body = (STATIC / "index.html").read_bytes()
        return Response(body, media_type="text/html; charset=utf-8", headers=_headers())

    @router.get("/ui")
    def jobs_page() -> Response:
        return page()

    @router.get("/ui/jobs/{job_id}")
    def job_page(job_id: str) -> Response:
        return page()

    @router.get("/ui/leaderboard")
    def leaderboard_page() -> Response:
        return page()

    @router.get("/ui/static/{name}")
    def static(name: str) -> Response:
        if name not in _TYPES:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404, f"no file {name!r}")
        return Response((STATIC / name).read_bytes(), media_type=_TYPES[name], headers=_headers())

    return router
