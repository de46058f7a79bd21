"""A real ``apo serve`` in a subprocess for the service tests: started on a free port of 127.0.0.1, stopped by PID."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
FAST = {"target": "fake:upper", "searcher": "ape", "rounds": 1, "cache": False}
SLOW = {"target": "fake:slow", "searcher": "ape", "rounds": 1, "cache": False}


class Server:
    """``apo serve --port 0`` on a runs folder of the test's own, with its URL and token.

    Args:
        tmp_path: the test's folder (runs in ``runs/``, the response cache in ``cache/``).
        args: more ``apo serve`` options.
        env: more environment variables (provider keys and endpoints are removed from the test's own).
    """

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.runs = tmp_path / "runs"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))},
               "PYTHONPATH": str(REPO), "APO_RUNS_DIR": str(self.runs), "APO_CACHE_DIR": str(tmp_path / "cache"),
               "OMP_NUM_THREADS": "1", **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "optimizer", "serve", "--port", "0", *args], cwd=tmp_path,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = self._first_line(timeout=60).rsplit(" ", 1)[-1]
        self.token = (self.runs / "service.token").read_text().strip()
        self.stderr: list[str] = []
        assert self.proc.stderr is not None
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()  # type: ignore

    def _first_line(self, timeout: float) -> str:
        box: list[str] = []
        assert self.proc.stdout is not None
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore
        reader.start()
        reader.join(timeout)
        if not box or "listening on" not in box[0]:
            self.kill()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise AssertionError(f"apo serve did not start: {box} {err}")
        return box[0].strip()

    def http(self, token: str | None = "") -> httpx.Client:
        """An httpx client of the server, with its token (or ``token`` when given; None: no header)."""
        headers = {} if token is None else {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self) -> None:
        """SIGTERM (a graceful stop), then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL the server (its workers notice and die too)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=20)


def wait_for(predicate, timeout: float = 60, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def duplicate_scores(runs: Path) -> list[tuple]:
    """(run, split, prompt_hash, example, kind) keys recorded more than once in any events.jsonl under ``runs``.

    A score event holds the kinds computed in its pass (``acc``, ``lp``): a prompt's answer and its gold
    log-probability on one example are two events, each recorded once.
    """
    dupes = []
    for path in runs.glob("*/events.jsonl"):
        keys: Counter = Counter()
        for line in path.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "score":
                for kind in ("acc", "lp"):
                    if kind in event:
                        keys[(event["split"], event["prompt_hash"], event["example"], kind)] += 1
        dupes += [(path.parent.name, *key) for key, n in keys.items() if n > 1]
    return dupes


def same_result(result: dict, reference: dict) -> None:
    """Assert two results found the same thing (the same prompts, scores and decision)."""
    assert result["status"] == reference["status"]
    assert result["best"]["text"] == reference["best"]["text"]
    assert result["best"]["dev"] == reference["best"]["dev"] and result["best"]["test"] == reference["best"]["test"]
    assert [(c["id"], c["text"], c["dev"]) for c in result["candidates"]] == \
        [(c["id"], c["text"], c["dev"]) for c in reference["candidates"]]
    assert [(b["name"], b["test"]) for b in result["baselines"]] == \
        [(b["name"], b["test"]) for b in reference["baselines"]]
    assert result["selection"] == reference["selection"]
    assert result["calls"] == reference["calls"]
