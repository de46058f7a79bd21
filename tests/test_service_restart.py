"""apo serve killed (SIGKILL) while jobs run and wait, then started again: every job finishes as on an
uninterrupted server, and no score is recorded twice."""

from __future__ import annotations

import json
import time

import pytest
from service_helpers import SLOW, Server, duplicate_scores, same_result, wait_for

from optimizer import ApoClient, optimize
from optimizer.models.providers import fake
from optimizer.run.lock import lock_holder

pytestmark = pytest.mark.slow


def _reference(seed: int, runs_dir, monkeypatch) -> dict:
    """The same job in this process, uninterrupted (the same fake without its delay)."""
    monkeypatch.setitem(fake.FAKES, "slow", lambda: fake._upper("fake:slow"))
    return optimize("capitalize_words", runs_dir=runs_dir, **{**SLOW, "seed": seed}).model_dump(mode="json")


def test_a_killed_server_resumes_its_jobs_without_scoring_anything_twice(tmp_path, monkeypatch):
    server = Server(tmp_path, "--workers", "2")
    jobs: list[str] = []
    try:
        client = ApoClient(server.url, server.token)
        jobs = [client.submit("capitalize_words", **{**SLOW, "seed": seed}) for seed in range(3)]
        wait_for(lambda: sum(client.get(j)["progress"]["scores"] > 40 for j in jobs) >= 2, 120, "two jobs to score")
        states = [client.get(j)["state"] for j in jobs]
        assert states == ["running", "running", "queued"], states
        running_runs = [client.get(j)["run_id"] for j in jobs[:2]]
    finally:
        server.kill()
    workers = [lock_holder(server.runs / run) for run in running_runs]
    wait_for(lambda: all(lock_holder(server.runs / run) is None for run in running_runs), 30,
             f"the workers {workers} to die with their server")
    before = {run: (server.runs / run / "events.jsonl").read_text().count('"type": "score"') for run in running_runs}
    assert all(n > 40 for n in before.values()) and not any((server.runs / r / "result.json").exists()
                                                            for r in running_runs)

    server = Server(tmp_path, "--workers", "2")
    try:
        client = ApoClient(server.url, server.token)
        finished = [client.wait(j, timeout=240) for j in jobs]
        assert [j["state"] for j in finished] == ["complete"] * 3, [j.get("error") for j in finished]
        assert [j["run_id"] for j in finished[:2]] == running_runs  # resumed, not started again
        results = [client.result(j) for j in jobs]
    finally:
        server.stop()
    for seed, result in enumerate(results):
        reference = tmp_path / f"reference{seed}"
        same_result(result, _reference(seed, reference, monkeypatch))
        assert duplicate_scores(reference) == []  # the same check holds for an uninterrupted run
    assert duplicate_scores(server.runs) == []
    runs = [p.parent.name for p in server.runs.glob("*/config.json")]
    assert sorted(runs) == sorted(j["run_id"] for j in finished)  # one run per job, no orphan
    for run in running_runs:
        sessions = [json.loads(line) for line in (server.runs / run / "events.jsonl").read_text().splitlines()
                    if '"type": "session"' in line]
        assert [s["resume"] for s in sessions] == [False, True]


def test_a_server_stopped_while_a_job_is_queued_runs_it_on_the_next_start(tmp_path):
    server = Server(tmp_path, "--workers", "1")
    try:
        client = ApoClient(server.url, server.token)
        first = client.submit("capitalize_words", **SLOW)
        second = client.submit("capitalize_words", **{**SLOW, "seed": 1})
        wait_for(lambda: client.get(first)["state"] == "running", 60, "the first job to start")
    finally:
        server.stop()  # SIGTERM: a graceful stop leaves the jobs to the next start
    time.sleep(0.5)
    server = Server(tmp_path, "--workers", "1")
    try:
        client = ApoClient(server.url, server.token)
        assert [client.wait(j, timeout=240)["state"] for j in (first, second)] == ["complete", "complete"]
    finally:
        server.stop()
    assert duplicate_scores(server.runs) == []
