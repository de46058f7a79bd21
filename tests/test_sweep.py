"""``apo sweep``: expanding a sweep file into checked jobs, running them in local worker processes, continuing
a sweep run again, and a killed worker's job retried from its journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from service_helpers import REPO, duplicate_scores, same_result, wait_for

from optimizer import optimize
from optimizer.cli.main import main
from optimizer.errors import UsageError
from optimizer.models.providers import fake
from optimizer.run.lock import lock_holder
from optimizer.service.sweep import plan_sweep, sweep

GRID = """
tasks: [capitalize_words, double_number]
targets: ["fake:upper"]
searchers: [ape, demos]
seeds: [0, 1]
settings: {ape: {rounds: 1}, cache: false}
grid: {shots: [2, 3]}
"""


def _file(tmp_path: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_sweep_file_expands_into_one_checked_job_per_combination(tmp_path):
    sweep_id, jobs = plan_sweep(_file(tmp_path, GRID))
    assert len(jobs) == 2 * 1 * 2 * 2 * 2
    assert sweep_id.startswith("sweep-") and [j.index for j in jobs] == list(range(16))
    assert len({j.run_id for j in jobs}) == 16 and all(j.run_id.startswith(sweep_id) for j in jobs)
    combos = {(j.labels["task"], j.labels["searcher"], j.labels["seed"], j.labels["shots"]) for j in jobs}
    assert len(combos) == 16
    first = jobs[0]
    assert first.config["task"] == "capitalize_words" and first.config["target"] == "fake:upper"
    assert first.config["ape"] == {"rounds": 1} and first.config["cache"] is False
    assert first.describe() == "capitalize_words ape fake:upper seed 0 shots=2"
    assert plan_sweep(_file(tmp_path, GRID))[0] == sweep_id  # the same file continues the same sweep
    assert plan_sweep(_file(tmp_path, GRID), new=True)[0] != sweep_id
    changed = plan_sweep(_file(tmp_path, GRID.replace("seeds: [0, 1]", "seeds: [0, 2]")))[0]
    assert changed != sweep_id


@pytest.mark.parametrize("text, message", [
    ("tasks: [capitalize_words]\nsearcher: [ape]\n", "searcher: unknown field; a sweep file has name, tasks"),
    ("targets: [embedded]\n", "tasks: field required"),
    ("tasks: []\n", "tasks: list should have at least 1 item"),
    ("tasks: [capitalize_words]\nsettings: {seed: 3}\n", "settings.seed: give seeds as the sweep's own list"),
    ("tasks: [capitalize_words]\ngrid: {shots: []}\n", "grid.shots: give at least one value"),
    ("tasks: [capitalize_words]\nsettings: {roundz: 1}\n", "job 0 (task capitalize_words, target embedded, seed 0)"),
    ("tasks: [capitalize_words, nope]\ntargets: ['fake:upper']\n", "job 1 (task nope, target fake:upper, seed 0): "
                                                                   "no task named 'nope'"),
    ("tasks: [capitalize_words]\ntargets: ['openai:gpt-4o-mini']\n", "a job with an API model needs a budget"),
    ("tasks: [capitalize_words]\nsearchers: [demos]\nsettings: {rounds: 1}\n", "rounds: APE option, but the "
                                                                               "searcher is demos"),
    ("- capitalize_words\n", "holds one mapping"),
    ("tasks: [capitalize_words\n", "not valid YAML"),
])
def test_a_bad_sweep_file_is_refused_naming_the_field_or_the_job(tmp_path, text, message):
    with pytest.raises(UsageError) as err:
        plan_sweep(_file(tmp_path, text))
    assert message in str(err.value) and "sweep.yaml" in str(err.value)


def test_a_bad_sweep_is_refused_before_any_job_runs_with_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("APO_RUNS_DIR", str(tmp_path / "runs"))
    path = _file(tmp_path, "tasks: [capitalize_words, nope]\ntargets: ['fake:upper']\n")
    assert main(["sweep", str(path)]) == 2
    assert "job 1" in capsys.readouterr().err and not (tmp_path / "runs").exists()
    assert main(["sweep", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.slow
def test_a_local_sweep_runs_every_job_and_running_it_again_continues_it(tmp_path, monkeypatch):
    monkeypatch.setenv("APO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    path = _file(tmp_path, "tasks: [capitalize_words, double_number]\ntargets: ['fake:upper']\n"
                           "searchers: [ape, demos]\nsettings: {ape: {rounds: 1}, cache: false}\n")
    runs = tmp_path / "runs"
    seen: list[tuple[str, int]] = []
    result = sweep(path, workers=2, runs_dir=runs, on_event=lambda kind, job, _: seen.append((kind, job.index)))
    assert [o.state for o in result.outcomes] == ["complete"] * 4 and [o.attempts for o in result.outcomes] == [1] * 4
    assert sorted(i for k, i in seen if k == "done") == [0, 1, 2, 3]
    assert sorted(p.parent.name for p in runs.glob("*/config.json")) == sorted(j.run_id for j in result.jobs)
    report = Path(str(result.report))
    assert report.name == "leaderboard.html" and "capitalize_words" in report.read_text()
    assert "double\\_number" in (report.parent / "leaderboard.md").read_text()
    assert result.leaderboard is not None and len(result.leaderboard.rows) == 4  # the board the report shows
    assert "leaderboard" not in json.loads(result.model_dump_json())
    scored = {j.run_id: (runs / j.run_id / "events.jsonl").read_text() for j in result.jobs}

    again = sweep(path, workers=2, runs_dir=runs)  # finished runs are kept, not run again
    assert again.sweep_id == result.sweep_id and [o.attempts for o in again.outcomes] == [0] * 4
    assert {j.run_id: (runs / j.run_id / "events.jsonl").read_text() for j in again.jobs} == scored
    reference = optimize("capitalize_words", target="fake:upper", searcher="ape", rounds=1, cache=False,
                         runs_dir=tmp_path / "ref")  # job 0: the first task with the first searcher
    same_result(json.loads((runs / result.jobs[0].run_id / "result.json").read_text()),
                reference.model_dump(mode="json"))


def sweep_process(tmp_path: Path, path: Path, *args: str) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))},
           "PYTHONPATH": str(REPO), "APO_RUNS_DIR": str(tmp_path / "runs"), "APO_CACHE_DIR": str(tmp_path / "cache"),
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "optimizer", "sweep", str(path), *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_a_worker_mid_job(tmp_path: Path, proc: subprocess.Popen, timeout: float) -> str:
    """SIGKILL the process holding the first run that has scored more than 40 examples; returns the run id.
    When none comes within ``timeout`` seconds, the sweep is stopped (Ctrl-C) and the test fails."""
    try:
        return _kill(tmp_path, proc, timeout)
    except BaseException:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
        raise


def _kill(tmp_path: Path, proc: subprocess.Popen, timeout: float) -> str:
    runs = tmp_path / "runs"

    def busy() -> tuple[str, int] | None:
        for events in sorted(runs.glob("*/events.jsonl")):
            holder = lock_holder(events.parent)
            if holder and events.read_text().count('"type": "score"') > 40 and \
                    not (events.parent / "result.json").exists():
                return events.parent.name, holder
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        return None

    run_id, pid = wait_for(busy, timeout, "a job to be scoring")
    os.kill(pid, signal.SIGKILL)
    return run_id


def check_killed_job(tmp_path: Path, proc: subprocess.Popen, run_id: str, jobs: int, monkeypatch) -> None:
    """The sweep ended well, the killed job's run resumed (attempt 2) and matches an uninterrupted run."""
    try:
        out, _ = proc.communicate(timeout=400)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        raise AssertionError(f"the sweep did not end: {out}") from None
    assert proc.returncode == 0, out
    assert out.count(": complete") == jobs, out
    line = next(x for x in out.splitlines() if f"(run {run_id})" in x)
    assert "after 2 attempts" in line, out
    runs = tmp_path / "runs"
    sessions = [json.loads(x) for x in (runs / run_id / "events.jsonl").read_text().splitlines()
                if '"type": "session"' in x]
    assert [s["resume"] for s in sessions] == [False, True]
    assert duplicate_scores(runs) == []
    config = json.loads((runs / run_id / "config.json").read_text())["config"]
    monkeypatch.setitem(fake.FAKES, "slow", lambda: fake._upper("fake:slow"))
    reference = optimize(config["task"], target="fake:slow", ape={"rounds": 1}, cache=False, seed=config["seed"],
                         runs_dir=tmp_path / "ref")
    same_result(json.loads((runs / run_id / "result.json").read_text()), reference.model_dump(mode="json"))


SLOW_SWEEP = "tasks: [capitalize_words]\ntargets: ['fake:slow']\nseeds: [0, 1, 2, 3, 4, 5]\n" \
             "settings: {ape: {rounds: 1}, cache: false}\n"


@pytest.mark.slow
def test_a_local_worker_killed_mid_job_is_retried_and_resumes_from_its_journal(tmp_path, monkeypatch):
    proc = sweep_process(tmp_path, _file(tmp_path, SLOW_SWEEP.replace("1, 2, 3, 4, 5", "1")), "--workers", "2")
    run_id = kill_a_worker_mid_job(tmp_path, proc, 120)
    check_killed_job(tmp_path, proc, run_id, 2, monkeypatch)
