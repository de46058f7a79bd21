"""Jobs on a local Ray instance (127.0.0.1, 2 CPUs): a 6-job sweep whose worker is killed mid-job (Ray
retries the task and the job resumes from its journal), and ``apo serve --executor ray``."""

from __future__ import annotations

import pytest
from service_helpers import FAST, SLOW, Server, wait_for
from test_sweep import SLOW_SWEEP, _file, check_killed_job, kill_a_worker_mid_job, sweep_process

from optimizer import ApoClient

pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' (CI installs it)")
pytestmark = pytest.mark.slow


def test_a_ray_sweep_retries_a_killed_worker_and_the_job_resumes(tmp_path, monkeypatch):
    proc = sweep_process(tmp_path, _file(tmp_path, SLOW_SWEEP), "--executor", "ray", "--workers", "2")
    run_id = kill_a_worker_mid_job(tmp_path, proc, 180)
    check_killed_job(tmp_path, proc, run_id, 6, monkeypatch)


def test_the_server_runs_its_jobs_as_ray_tasks(tmp_path):
    server = Server(tmp_path, "--executor", "ray", "--workers", "2")
    try:
        client = ApoClient(server.url, server.token)
        jobs = [client.submit("capitalize_words", **{**FAST, "seed": seed}) for seed in range(3)]
        finished = [client.wait(job, timeout=180) for job in jobs]
        assert [j["state"] for j in finished] == ["complete"] * 3, [j.get("error") for j in finished]
        assert all(client.result(job)["best"]["text"] for job in jobs)
        slow = client.submit("capitalize_words", **SLOW)  # a cancel is a SIGINT in the Ray worker: a partial result
        wait_for(lambda: client.get(slow)["progress"]["scores"] > 20, 120, "the slow job to score")
        client.cancel(slow)
        job = client.wait(slow, timeout=120)
        assert job["state"] == "cancelled" and job["status"] == "interrupted", job
        assert "cancelled" in client.result(slow)["stop_reason"]
    finally:
        server.stop()
    assert not (server.runs / "service-logs").exists() or not any((server.runs / "service-logs").iterdir())
