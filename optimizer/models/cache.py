"""On-disk response cache: SQLite in WAL mode, shared across runs and searchers.

The key is the sha256 of the canonical request (model id, kind of request, every request
field, including the sample index), so repeated samples of one prompt stay distinct.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path

from pydantic import BaseModel

from optimizer.errors import UsageError

__all__ = ["CorruptCache", "ResponseCache", "cache_dir", "default_cache_path", "request_key"]


class CorruptCache(UsageError):
    """The response cache's file is not a readable SQLite database."""


def cache_dir() -> Path:
    """apo's cache folder: ``$APO_CACHE_DIR``, else ``$XDG_CACHE_HOME/apo``, else ``~/.cache/apo``."""
    if os.environ.get("APO_CACHE_DIR"):
        return Path(os.environ["APO_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "apo"


def default_cache_path() -> Path:
    """The response cache's SQLite file: ``<cache_dir>/responses.sqlite``."""
    return cache_dir() / "responses.sqlite"


def request_key(model: str, kind: str, request: BaseModel) -> str:
    """sha256 of the canonical JSON of (model, kind, request)."""
    payload = json.dumps(
        {"model": model, "kind": kind, "request": request.model_dump(mode="json")},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """A key/value store of JSON responses.

    Args:
        path: the SQLite file; created with its folder when missing.
    """

    def __init__(self, path: Path | str | None = None) -> None:
        self.path = Path(path) if path else default_cache_path()
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        except (OSError, sqlite3.OperationalError) as exc:
            raise UsageError(f"the response cache {str(self.path)!r} cannot be opened ({exc}); fix: set APO_CACHE_DIR "
                             "to a folder this user can write, or run with --no-cache") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, kind TEXT, "
                "response TEXT NOT NULL, created REAL DEFAULT (unixepoch('subsec')))"
            )
            self._db.execute("SELECT key, response FROM responses LIMIT 1").fetchall()
            self._db.commit()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk I/O: the file may be fine
                raise UsageError(f"the response cache {str(self.path)!r} cannot be used ({exc}); fix: set "
                                 "APO_CACHE_DIR to another folder, or run with --no-cache") from None
            raise CorruptCache(f"the response cache {str(self.path)!r} is damaged ({exc}); fix: `apo cache clear` "
                               "recreates it (cached answers are lost; runs keep their scores), or run with "
                               "--no-cache") from None

    @classmethod
    def recreate(cls, path: Path | str | None = None) -> ResponseCache:
        """Delete the cache's files (the database and its WAL and shared-memory files) and make an empty one.

        Args:
            path: the SQLite file (default: :func:`default_cache_path`).

        Returns:
            The new, empty cache.
        """
        target = Path(path) if path else default_cache_path()
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        return cls(target)

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        """The cached responses among ``keys``."""
        found: dict[str, dict] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, response in self._db.execute(
                    f"SELECT key, response FROM responses WHERE key IN ({marks})", chunk
                ):
                    found[key] = json.loads(response)
        return found

    def put_many(self, rows: list[tuple[str, str, str, dict]]) -> None:
        """Store (key, model, kind, response) rows."""
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO responses (key, model, kind, response) VALUES (?, ?, ?, ?)",
                [(k, m, kind, json.dumps(r, ensure_ascii=False)) for k, m, kind, r in rows],
            )
            self._db.commit()

    def stats(self) -> dict[str, int]:
        """Number of entries per model."""
        with self._lock:
            return dict(self._db.execute("SELECT model, COUNT(*) FROM responses GROUP BY model").fetchall())

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._lock:
            n = self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            self._db.execute("DELETE FROM responses")
            self._db.commit()
            return n

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
