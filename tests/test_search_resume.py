"""Every built-in instruction searcher survives SIGKILL: `apo resume` finishes the same job, scoring nothing twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import REPO, run_cli


def _events(run_dir: Path) -> list[dict]:
    lines = (run_dir / "events.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize(("searcher", "kill_after", "rule"), [("ape", 150, "halving"), ("demos", 300, "halving"),
                                                         ("reflect", 250, "halving"), ("joint", 250, "halving"),
                                                         ("demos", 300, "both")])
def test_killed_search_resumes_to_the_uninterrupted_result(tmp_path, searcher, kill_after, rule):
    job = tmp_path / "job.json"  # the racing rule is a job-file option
    job.write_text(json.dumps({"race_rule": rule}))
    args = ["optimize", "past_tense", "--target", "fake:slow", "--searcher", searcher, "--no-cache", "--seed", "4",
            "--config", str(job)]
    ref = run_cli(*args, "--json", env_extra={"APO_RUNS_DIR": str(tmp_path / "ref")})
    assert ref.returncode == 0, ref.stderr
    reference = json.loads(ref.stdout)

    env = {"APO_RUNS_DIR": str(tmp_path / "runs")}
    proc = subprocess.Popen([sys.executable, "-m", "optimizer", *args], cwd=REPO, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs, run_dir, deadline = tmp_path / "runs", None, time.time() + 90
    while time.time() < deadline:
        found = list(runs.glob("*/events.jsonl")) if runs.exists() else []
        if found and sum(1 for e in _events(found[0].parent) if e["type"] == "score") > kill_after:
            run_dir = found[0].parent
            break
        time.sleep(0.05)
    assert run_dir is not None, "the job never got going"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "result.json").exists(), "killed too late: the job had finished"
    before = _events(run_dir)

    out = run_cli("resume", run_dir.name, env_extra=env)
    assert out.returncode == 0, out.stderr
    result = json.loads((run_dir / "result.json").read_text())
    after = _events(run_dir)
    assert after[: len(before)] == before
    keys = [(e["split"], e["prompt_hash"], e["example"], "acc" in e) for e in after if e["type"] == "score"]
    assert len(keys) == len(set(keys)), "a score was computed twice"
    assert result["calls"] == reference["calls"]
    assert [(c["id"], c.get("demos"), c["dev"]) for c in result["candidates"]] == \
        [(c["id"], c.get("demos"), c["dev"]) for c in reference["candidates"]]
    assert result["selection"] == reference["selection"]
    assert result["best"]["test"] == reference["best"]["test"]
