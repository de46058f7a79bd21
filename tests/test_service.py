"""apo serve: a real uvicorn server on 127.0.0.1 driven over HTTP, by ApoClient and by `apo submit` / `apo jobs`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import httpx
import pytest
from service_helpers import FAST, REPO, SLOW, Server, same_result, wait_for

from optimizer import ApoClient, load_task, optimize
from optimizer.api import export_prompt, list_runs
from optimizer.config import RunConfig
from optimizer.errors import ServiceError, UsageError
from optimizer.run.lock import lock_holder
from optimizer.service.models import StreamEvent

pytestmark = pytest.mark.slow


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path, "--max-job-calls", "500", "--max-total-calls", "800", "--max-examples", "150")
    try:
        yield srv
    finally:
        srv.stop()


def _detail(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    return response.json()["detail"]


def _cli_message(**options) -> str:
    with pytest.raises(UsageError) as info:
        RunConfig.from_options("capitalize_words", **options)
    return str(info.value)


def test_token_is_required_everywhere_but_healthz(server):
    mode = stat.S_IMODE((server.runs / "service.token").stat().st_mode)
    assert mode == 0o600
    with server.http(token=None) as anonymous:
        assert anonymous.get("/healthz").json() == {"ok": True}
        for path in ("/jobs", "/jobs/x", "/jobs/x/events", "/leaderboard", "/openapi.json", "/docs"):
            assert anonymous.get(path).status_code == 401, path
        assert anonymous.post("/jobs", json={"task": "capitalize_words"}).status_code == 401
        assert anonymous.get("/jobs", headers={"Authorization": server.token}).status_code == 401  # no "Bearer"
    with server.http(token="wrong") as wrong:
        response = wrong.get("/jobs")
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert server.token not in response.text
    with server.http() as client:
        assert client.get("/jobs").json() == []
        assert "/jobs/{job_id}/events" in client.get("/openapi.json").json()["paths"]
        assert "swagger" in client.get("/docs").text.lower()
        assert "access-control-allow-origin" not in client.get("/jobs", headers={"Origin": "http://evil"}).headers
        assert _detail(client.get("/jobs/nope"), 404).startswith("no job 'nope'")


def test_bad_jobs_are_refused_with_the_cli_messages(server):
    with server.http() as client:
        def post(config: dict, task: object = "capitalize_words") -> httpx.Response:
            return client.post("/jobs", json={"task": task, "config": config})

        assert _detail(post({"roundz": 1}), 400) == _cli_message(roundz=1)
        assert _detail(post({"searcher": "ape", "rounds": "many"}), 400) == _cli_message(searcher="ape", rounds="many")
        assert _detail(post({"dev_limit": 0}), 400) == _cli_message(dev_limit=0)
        assert _detail(post({"rounds": 1, "reflect": {"beam": 1}, "searcher": "ape", "beam": 2}), 400) == \
            _cli_message(rounds=1, reflect={"beam": 1}, searcher="ape", beam=2)
        assert "--shots 500" in _detail(post({"shots": 500}), 400)  # checked against the task, as apo optimize does
        assert _detail(post({}, task="no_such_task"), 400).startswith("no task named 'no_such_task'")
        assert "no task named" in _detail(post({}, task="/etc"), 400)  # names only, never server paths
        assert "needs a budget" in _detail(post({"target": "openai:gpt-4o-mini"}), 400)
        assert "over this server's limit of 500" in _detail(post({"target": "openai:gpt-4o-mini", "max_calls": 900}),
                                                            400)
        assert "API keys are never taken" in _detail(post({"api_key": "sk-x"}), 400)
        assert "not settable" in _detail(post({"base_url": "http://evil/v1"}), 400)
        assert "not settable" in _detail(post({"prices": "/etc/passwd"}), 400)
        assert "reads a file on the server" in _detail(post({"initial_prompt": "@/etc/passwd"}), 400)
        assert "not valid JSON" in _detail(client.post("/jobs", content=b"{nope"), 400)
        assert "task: field required" in _detail(client.post("/jobs", json={"config": {}}), 400)
        big = {"spec": {"name": "big"}, "examples": {"train": [{"input": "x" * 1000, "output": "y"}] * 6000,
                                                     "test": [{"input": "a", "output": "b"}]}}
        assert "request body over" in _detail(client.post("/jobs", json={"task": big}), 413)
        many = {"spec": {"name": "many"}, "examples": {"train": [{"input": "a", "output": "b"}] * 151,
                                                       "test": [{"input": "a", "output": "b"}]}}
        assert "at most 150 per split" in _detail(post({}, task=many), 400)
        bad = {"spec": {"name": "bad", "metric": "nope"}, "examples": {"train": [{"input": "a", "output": "b"}],
                                                                      "test": [{"input": "a", "output": "b"}]}}
        message = _detail(post({}, task=bad), 400)
        assert "unknown metric 'nope'" in message and str(server.runs) not in message
        assert client.get("/jobs").json() == []  # nothing queued
        assert not list((server.runs / "uploads").glob("*")) if (server.runs / "uploads").exists() else True
        assert post({"target": "openai:gpt-4o-mini", "max_calls": 500}).status_code == 201
        assert "over its total of 800" in _detail(post({"target": "openai:gpt-4o-mini", "max_calls": 400}), 400)


def test_provider_keys_stay_in_the_server_environment(tmp_path):
    secret = "sk-test-DO-NOT-LEAK-1234567890"
    srv = Server(tmp_path, env={"OPENAI_API_KEY": secret, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    try:
        client = ApoClient(srv.url, srv.token)
        job_id = client.submit("capitalize_words", target="openai:gpt-4o-mini", max_calls=50)
        job = client.wait(job_id, timeout=180)
        assert job["state"] == "failed" and "127.0.0.1:9" in job["error"]
        with srv.http() as http:
            texts = [http.get(p).text for p in ("/jobs", f"/jobs/{job_id}", f"/jobs/{job_id}/result", "/openapi.json")]
    finally:
        srv.stop()
    texts += [p.read_text(errors="replace") for p in srv.runs.rglob("*") if p.is_file() and p.suffix != ".sqlite"]
    texts += ["".join(srv.stderr), (srv.runs / "service.sqlite").read_bytes().decode("latin-1")]
    assert not [t for t in texts if secret in t]


def test_a_fake_job_gives_the_result_of_optimize(server, tmp_path):
    client = ApoClient(server.url, server.token)
    job_id = client.submit("capitalize_words", **FAST)
    job = client.wait(job_id, timeout=120)
    assert job["state"] == "complete" and job["status"] == "complete" and job["verdict"]
    assert job["progress"]["scores"] > 0 and job["calls"] > 0 and job["run_id"]
    result = client.result(job_id)
    reference = optimize("capitalize_words", runs_dir=tmp_path / "local", **FAST).model_dump(mode="json")
    same_result(result, reference)
    assert client.export(job_id) == export_prompt(job["run_id"], server.runs).model_dump(mode="json")
    assert [r.id for r in list_runs(server.runs)] == [job["run_id"]]  # an apo run like any other
    board = client.leaderboard()
    assert [row["task"] for row in board["rows"]] == ["capitalize_words"]
    with server.http() as http:
        page = http.get("/leaderboard", params={"format": "html"})
        assert page.status_code == 200 and page.text.startswith("<!DOCTYPE html>")
        assert http.get("/leaderboard", params={"format": "xml"}).status_code == 400
    assert [j["id"] for j in client.list()] == [job_id]
    with pytest.raises(ServiceError) as info:
        client.cancel(job_id)
    assert info.value.status == 409 and "already ended" in str(info.value)


def test_an_uploaded_task_runs_like_a_named_one(server, tmp_path):
    task = load_task("capitalize_words").model_copy(update={"name": "my_caps"})
    client = ApoClient(server.url, server.token)
    job_id = client.submit(task, config={"searcher": "ape", "rounds": 1}, target="fake:upper", cache=False)
    job = client.wait(job_id, timeout=120)
    assert job["state"] == "complete", job
    assert job["task"] == "my_caps" and client.result(job_id)["task"] == "my_caps"
    assert (server.runs / "uploads" / job_id / "task.yaml").exists()


def test_cancel_stops_a_running_job_with_a_partial_result_and_a_queued_one_at_once(server):
    client = ApoClient(server.url, server.token)
    running = client.submit("capitalize_words", **SLOW)
    queued = client.submit("capitalize_words", **{**SLOW, "seed": 1})
    wait_for(lambda: client.get(running)["progress"]["scores"] > 30, 90, "the slow job to score")
    assert client.cancel(queued)["state"] == "cancelled"
    client.cancel(running)
    job = client.wait(running, timeout=60)
    assert job["state"] == "cancelled" and job["status"] == "interrupted"
    result = client.result(running)
    assert result["status"] == "interrupted" and "cancelled" in result["stop_reason"]
    assert 30 < result["calls"] < 500  # what was scored before the stop is kept
    with pytest.raises(ServiceError) as info:
        client.result(queued)
    assert info.value.status == 409
    assert client.get(queued)["run_id"] is None


def test_events_stream_in_order_and_resume_after_a_dropped_connection(server):
    client = ApoClient(server.url, server.token)
    job_id = client.submit("capitalize_words", **SLOW)
    seen: list[tuple[int, str]] = []
    with server.http() as http:
        with http.stream("GET", f"/jobs/{job_id}/events") as response:  # dropped after 20 events
            assert response.headers["content-type"].startswith("text/event-stream")
            seen += _sse(response, stop_after=20)
        with http.stream("GET", f"/jobs/{job_id}/events", headers={"Last-Event-ID": str(seen[-1][0])}) as response:
            seen += _sse(response)
    run_id = client.get(job_id)["run_id"]
    lines = (server.runs / run_id / "events.jsonl").read_text().splitlines()
    assert [n for n, _ in seen] == list(range(1, len(lines) + 1))
    assert [data for _, data in seen] == lines
    watched = list(client.watch(job_id))
    assert [(w.line, w.event) for w in watched] == [(i, json.loads(x)) for i, x in enumerate(lines, 1)]
    assert watched[-1].event["type"] == "done"


def _sse(response: httpx.Response, stop_after: int | None = None) -> list[tuple[int, str]]:
    out, fields = [], {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
            continue
        if fields.get("event") == "end":
            break
        if "id" in fields:
            out.append((int(fields["id"]), fields["data"]))
            if stop_after is not None and len(out) == stop_after:
                break
        fields = {}
    return out


def test_watch_reconnects_with_the_last_event_id():
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        if len(asked) == 1:  # the first connection drops after two events
            return httpx.Response(200, content=b'id: 1\ndata: {"type": "a"}\n\nid: 2\ndata: {"type": "b"}\n\n')
        return httpx.Response(200, content=b'id: 3\ndata: {"type": "c"}\n\n: ping\n\nevent: end\ndata: {}\n\n')

    client = ApoClient("http://apo.test", "t", transport=httpx.MockTransport(handler))
    expected = [StreamEvent(line=n, event={"type": t}) for n, t in ((1, "a"), (2, "b"), (3, "c"))]
    assert list(client.watch("j")) == expected
    assert asked == ["0", "2"]


def test_a_failing_or_crashing_job_fails_and_the_server_stays_up(server):
    client = ApoClient(server.url, server.token)
    broken = client.submit("capitalize_words", target="hf:/no/such/model", searcher="ape", rounds=1)
    job = client.wait(broken, timeout=120)
    assert job["state"] == "failed" and "/no/such/model" in job["error"] and "Traceback" not in job["error"]
    crashing = client.submit("capitalize_words", **SLOW)
    run_id = wait_for(lambda: client.get(crashing)["run_id"], 60, "the run to start")
    pid = wait_for(lambda: lock_holder(server.runs / run_id), 60, "the worker to lock its run")
    os.kill(pid, 9)
    job = client.wait(crashing, timeout=60)
    assert job["state"] == "failed" and "killed by signal 9" in job["error"]
    with server.http(token=None) as anonymous:
        assert anonymous.get("/healthz").status_code == 200


def test_apo_submit_and_apo_jobs(server):
    env = {**os.environ, "PYTHONPATH": str(REPO), "APO_SERVER": server.url, "APO_TOKEN": ""}
    token_file = server.runs / "service.token"

    def apo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "optimizer", *args], env=env, capture_output=True, text=True,
                              timeout=180)

    out = apo("submit", "capitalize_words", "--target", "fake:upper", "--searcher", "ape", "--rounds", "1",
              "--no-cache",
              "--token-file", str(token_file), "--wait", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.split("\n", 1)[1])["status"] == "complete"
    listed = apo("jobs", "list", "--token-file", str(token_file))
    assert listed.returncode == 0 and "complete" in listed.stdout
    job_id = listed.stdout.split()[0]
    shown = apo("jobs", "show", job_id, "--token", server.token)
    assert shown.returncode == 0 and "verdict" in shown.stdout
    watched = apo("jobs", "watch", job_id, "--token", server.token)
    assert watched.returncode == 0 and "done" in watched.stdout and f"job {job_id} ended: complete" in watched.stdout
    refused = apo("submit", "capitalize_words", "--roundz", "1", "--token", server.token)
    assert refused.returncode == 2
    bad = apo("submit", "capitalize_words", "--target", "openai:gpt-4o-mini", "--token", server.token)
    assert bad.returncode == 2 and "needs a budget" in bad.stderr
    wrong = apo("jobs", "list", "--token", "nope")
    assert wrong.returncode == 2 and "missing or wrong token" in wrong.stderr


def test_service_help_is_light():
    code = ("import sys\nfrom optimizer.cli.main import main\n"
            "for sub in (['serve'], ['submit'], ['jobs'], ['jobs', 'watch']):\n"
            "    try:\n        main([*sub, '--help'])\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'fastapi', 'uvicorn') if m in sys.modules]\n"
            "assert not heavy, heavy\nprint('light')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.returncode == 0, out.stderr
    assert "light" in out.stdout and "Last-Event-ID" not in out.stdout
