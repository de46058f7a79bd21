"""An APE job through the OpenAI adapter against an OpenAI-compatible HTTP server on 127.0.0.1.

The server here is a small stdlib one answering like the fake model; it exercises the whole
path (model string, base URL, one HTTP request per prompt, concurrency, chat and completions
endpoints, log-probabilities of generated tokens, faults and timeouts).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from optimizer import optimize
from optimizer.models.providers.fake import FakeModel, last_input

FAKE = FakeModel("server",
                 proposals=["Start every word of the input with capital letters.", "Repeat the input.", "Say nothing."],
                 answer=lambda p: last_input(p).title() if "capital letters" in p.lower() else last_input(p))


def _steps(text: str) -> list[tuple[str, float, list[tuple[str, float]]]]:
    """Word tokens of ``text``, each likely, with one unlikely alternative."""
    words = [w for w in text.replace(" ", "\0 ").split("\0") if w] or [""]
    return [(w, -0.1, [(w, -0.1), (" zzz", -6.0)]) for w in words]


class Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []
    headers_seen: list[dict] = []
    faults = False
    slow: float = 0.0  # with faults: seconds a slow request waits before answering (past the client's timeout)
    offer_logprobs = True
    echo_auth = False  # answer 400 with the request's Authorization header in the error body
    failed_once: set[bytes] = set()
    lock = threading.Lock()
    in_flight = 0
    peak = 0

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):  # noqa: N802 (http.server's naming)
        raw = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.loads(raw)
        cls = type(self)
        with cls.lock:
            cls.requests.append({**body, "_path": self.path})
            cls.headers_seen.append(dict(self.headers))
            cls.in_flight += 1
            cls.peak = max(cls.peak, cls.in_flight)
            digest = int(hashlib.sha256(raw).hexdigest(), 16)
            fail = cls.faults and digest % 10 < 3 and raw not in cls.failed_once
            if fail:
                cls.failed_once.add(raw)
        if cls.echo_auth:
            self._leave()
            error = json.dumps({"error": {"message": f"bad request; you sent Authorization: "
                                                    f"{self.headers.get('Authorization')}", "type": "invalid"}})
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(error.encode())))
            self.end_headers()
            self.wfile.write(error.encode())
            return
        try:
            late = fail and cls.slow and digest % 3 == 0
            if late:  # a third of the faults answer, but only after the client's timeout
                time.sleep(cls.slow)
            elif fail:  # 30% of distinct requests fail once: 429, 500 or a timeout, by content
                self._leave()
                status = 429 if digest % 2 else 500
                self.send_response(status)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/json")
                error = json.dumps({"error": {"message": "injected", "type": "server_error"}}).encode()
                self.send_header("Content-Length", str(len(error)))
                self.end_headers()
                self.wfile.write(error)
                return
            time.sleep(0.01)  # long enough for concurrent requests to overlap here
            completions = self.path.endswith("/completions") and "chat" not in self.path
            prompt = body["prompt"] if completions else "\n".join(m["content"] for m in body["messages"])
            from optimizer.types import GenerateRequest

            text = FAKE.generate([GenerateRequest(prompt=prompt, stop=tuple(body.get("stop") or ()))])[0].text
            if completions:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
                if body.get("logprobs") and cls.offer_logprobs:
                    steps = _steps(" " + text)
                    choice["logprobs"] = {"tokens": [t for t, _, _ in steps],
                                          "token_logprobs": [lp for _, lp, _ in steps],
                                          "top_logprobs": [dict(alts) for _, _, alts in steps]}
                reply = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": body["model"],
                         "choices": [choice]}
            else:
                choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                if body.get("logprobs") and cls.offer_logprobs:
                    entry = lambda t, lp: {"token": t, "logprob": lp, "bytes": list(t.encode())}  # noqa: E731
                    choice["logprobs"] = {"content": [{**entry(t, lp), "top_logprobs": [entry(*a) for a in alts]}
                                                      for t, lp, alts in _steps(text)], "refusal": None}
                reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
                         "choices": [choice]}
            reply["usage"] = {"prompt_tokens": len(prompt.split()), "completion_tokens": 3,
                              "total_tokens": 3 + len(prompt.split())}
            data = json.dumps(reply).encode()
            self._leave()  # before replying: the client may send its next request as soon as it has the reply
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up on a late answer
            pass
        finally:
            self._leave()

    def _leave(self):
        cls = type(self)
        with cls.lock:
            if not getattr(self, "_left", False):
                self._left = True
                cls.in_flight -= 1


@pytest.fixture
def server():
    Handler.requests, Handler.headers_seen, Handler.failed_once = [], [], set()
    Handler.peak, Handler.faults, Handler.slow, Handler.offer_logprobs = 0, False, 0.0, True
    Handler.echo_auth = False
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def test_ape_job_through_openai_adapter(server):
    result = optimize("capitalize_words", target="openai:served", base_url=server, searcher="ape", rounds=1,
                      concurrency=3,
                      dev_limit=10, test_limit=10)
    assert result.status == "complete"
    # accuracy scoring: log-probabilities cost an extra billed request per example, so none are asked for
    assert result.best.dev.lp is None and not any(r.get("logprobs") for r in Handler.requests)
    assert result.calls == len(Handler.requests)  # one HTTP request per prompt
    assert all("n" not in r and "echo" not in r for r in Handler.requests)
    assert all(r["_path"] == "/v1/chat/completions" for r in Handler.requests)
    assert 1 < Handler.peak <= 3


def test_completions_endpoint_from_the_model_string(server):
    result = optimize("capitalize_words", target="openai-completions:served", base_url=server, searcher="ape", rounds=0,
                      dev_limit=6, test_limit=6)
    assert result.status == "complete" and result.best.test.acc == 1.0
    assert {r["_path"] for r in Handler.requests} == {"/v1/completions"}
    assert all(isinstance(r["prompt"], str) for r in Handler.requests)


def test_logprob_scoring_from_generated_token_logprobs(server, tmp_path):
    result = optimize("capitalize_words", target="openai:served", base_url=server, searcher="ape", rounds=0,
                      dev_limit=6,
                      test_limit=6, scoring="logprob", runs_dir=tmp_path)
    assert result.status == "complete"
    asked = [r for r in Handler.requests if r.get("logprobs")]
    assert asked and all(r["top_logprobs"] == 20 and r["temperature"] == 0.0 for r in asked)
    # the capitalizing instruction puts every gold answer on the model's greedy path: exact, -0.1 a token
    assert result.best.text == "Start every word of the input with capital letters." and result.best.test.acc == 1.0
    assert all(-1.0 < lp < 0 for lp in result.best.test_lp)
    events = [json.loads(line) for line in next(tmp_path.glob("*/events.jsonl")).read_text().splitlines()]
    scores = [e for e in events if e["type"] == "score" and "lp" in e]
    # other instructions leave the path early: their values are upper bounds, marked as such
    assert any(e.get("lp_exact") is False for e in scores) and any("lp_exact" not in e for e in scores)


def test_server_without_logprobs_fails_with_the_alternative(server, tmp_path):
    from optimizer import CapabilityError

    Handler.offer_logprobs = False
    with pytest.raises(CapabilityError, match="--scoring accuracy"):
        optimize("topic", target="openai:served", base_url=server, scoring="logprob", runs_dir=tmp_path / "runs",
                 searcher="ape", rounds=0, dev_limit=4)


def test_missing_key_is_a_usage_error_naming_the_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env["APO_RUNS_DIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "optimizer", "optimize", "topic", "--target", "openai:gpt-4o-mini"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 2
    assert "OPENAI_API_KEY" in out.stderr
    assert not any(tmp_path.iterdir()), "a refused job must not leave a run folder"


def test_injected_faults_leave_the_result_unchanged(server):
    kwargs = dict(target="openai:served", base_url=server, searcher="ape", rounds=1, concurrency=3, dev_limit=10,
                  test_limit=10,
                  cache=False, request_timeout=2.0)  # generous: a loaded machine must not time out clean requests
    clean = optimize("past_tense", **kwargs)
    clean_requests = len(Handler.requests)
    Handler.requests.clear()
    Handler.faults, Handler.slow = True, 3.0
    faulty = optimize("past_tense", **kwargs)
    assert Handler.failed_once, "no fault was injected"
    digests = [int(hashlib.sha256(raw).hexdigest(), 16) for raw in Handler.failed_once]
    assert any(d % 3 == 0 for d in digests), "no timeout was injected"
    assert len(Handler.requests) == clean_requests + len(Handler.failed_once)
    assert faulty.best == clean.best and faulty.baselines == clean.baselines
    assert [c.text for c in faulty.candidates] == [c.text for c in clean.candidates]


def test_api_key_never_reaches_disk(server, tmp_path, monkeypatch):
    secret = "sk-test-SECRET-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    result = optimize("topic", target="openai:served", base_url=server, searcher="ape", rounds=0, dev_limit=5,
                      test_limit=5,
                      runs_dir=tmp_path / "runs")
    assert any(secret in v for h in Handler.headers_seen for k, v in h.items() if k.lower() == "authorization"), \
        "the key was not sent"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the API key was written to {path}"
    assert result.status == "complete"


def test_cost_is_booked_from_the_price_table_and_caps_the_run(server, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"openai:served": [100.0, 400.0]}))
    full = optimize("topic", target="openai:served", base_url=server, searcher="ape", rounds=0, dev_limit=5,
                    test_limit=5,
                    prices=str(prices), cache=False)
    usage = full.usage["target"]
    expected = (usage["prompt_tokens"] * 100.0 + usage["completion_tokens"] * 400.0) / 1e6
    assert usage["cost_usd"] == pytest.approx(expected) and full.cost_usd > 0
    capped = optimize("topic", target="openai:served", base_url=server, searcher="ape", rounds=0, dev_limit=5,
                      test_limit=5,
                      prices=str(prices), cache=False, budget={"max_cost": full.cost_usd / 4})
    assert capped.status == "partial" and "cost" in capped.stop_reason
    assert capped.cost_usd < full.cost_usd


def test_max_cost_without_a_price_is_refused(server):
    from optimizer import UsageError

    with pytest.raises(UsageError, match="--prices"):
        optimize("topic", target="openai:served", base_url=server, budget={"max_cost": 1.0})
    assert not Handler.requests


def test_an_echoed_key_is_redacted_from_messages_and_files(server, tmp_path):
    key = "sk-test-SECRET0123456789abcdef"
    Handler.echo_auth = True
    env = {**os.environ, "OPENAI_API_KEY": key, "APO_RUNS_DIR": str(tmp_path / "runs"),
           "APO_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "300"}
    proc = subprocess.run([sys.executable, "-m", "optimizer", "optimize", "past_tense", "--target", "openai:served",
                           "--base-url", server, "--searcher", "ape", "--rounds", "1", "--dev-size", "5"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "bad request" in proc.stderr and "[redacted]" in proc.stderr, proc.stderr
    assert key not in proc.stdout + proc.stderr
    assert "SECRET" not in proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert key.encode() not in path.read_bytes(), path
