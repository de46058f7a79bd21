"""The bearer token of ``apo serve``: made on first start, kept in a file only its owner can read.

Every endpoint but ``/healthz`` needs ``Authorization: Bearer <token>``; the comparison takes the same time
whatever the token sent (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

from optimizer.errors import UsageError

__all__ = ["load_or_create_token", "token_matches"]


def load_or_create_token(path: Path) -> str:
    """The server's token: read from ``path``, or generated into it (mode 0600) when the file does not exist.

    Args:
        path: the token file.

    Returns:
        The token.

    Raises:
        UsageError: the file can be read by other users, or is empty.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(token + "\n")
    return token


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise UsageError(f"the token file {path} can be read by other users (mode {stat.S_IMODE(mode):o}); fix: "
                         f"`chmod 600 {path}`, or delete it and a new token is made")
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise UsageError(f"the token file {path} is empty; delete it and a new token is made on start")
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries the token.

    Args:
        header: the header's value (``Bearer <token>``), or None.
        token: the server's token.

    Returns:
        True only for ``Bearer`` and the exact token.
    """
    scheme, _, given = (header or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8"), token.encode("utf-8"))
