"""Resume trusts nothing (locks, changed data, foreign or damaged logs) and Ctrl-C keeps the work."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import REPO, run_cli

from optimizer.api import list_runs, resume
from optimizer.errors import RunLockedError

HOLD_LOCK = ("import sys, time\nfrom optimizer.run.lock import RunLock\n"
             "lock = RunLock(sys.argv[1])\nlock.acquire()\nprint('locked', flush=True)\ntime.sleep(120)\n")

WRAPPER = """
import sys, time
from optimizer.models.providers.fake import FakeModel, last_input, register_fake

def upper(name, delay=0.0):
    return FakeModel(name, proposals=["Repeat the input.", "Write the input in capital letters.", "Say nothing."],
                     answer=lambda p: last_input(p).upper() if "capital letters" in p.lower() else last_input(p),
                     delay=delay)

def slow_load():
    print("loading", flush=True)
    time.sleep(60)
    return upper("fake:slowload")

register_fake("slowload", slow_load)
register_fake("slower", lambda: upper("fake:slower", delay=0.2))
from optimizer.cli.main import main
sys.exit(main(sys.argv[1:]))
"""
"""``python -c WRAPPER ARGS`` is ``apo ARGS`` with two more fakes: one that takes a minute to load, one slow."""

FAST = ["--target", "fake:upper", "--searcher", "ape", "--rounds", "1", "--no-cache"]


def _env(tmp_path: Path) -> dict[str, str]:
    return {"APO_RUNS_DIR": str(tmp_path / "runs"), "APO_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "200"}


def _optimize(env: dict, *args: str) -> dict:
    out = run_cli("optimize", *args, "--json", env_extra=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a runner started in the background passes SIGINT ignored


def _popen(args: list[str], env: dict) -> subprocess.Popen:
    """``args`` as a terminal would start them: Ctrl-C (SIGINT) reaches the process whatever runs the tests."""
    return subprocess.Popen(args, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)


def _scores(run_dir: Path) -> int:
    path = run_dir / "events.jsonl"
    return path.read_text().count('"type": "score"') if path.exists() else 0


def _wait_for_scores(runs: Path, n: int, proc: subprocess.Popen, timeout: float = 90) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        found = list(runs.glob("*/events.jsonl")) if runs.exists() else []
        if found and _scores(found[0].parent) > n:
            return found[0].parent
        time.sleep(0.05)
    raise AssertionError(f"the job never got going (exit {proc.poll()})")


def _assert_same_result(result: dict, reference: dict) -> None:
    assert result["status"] == reference["status"] == "complete"
    assert result["calls"] == reference["calls"]
    assert result["best"]["text"] == reference["best"]["text"]
    assert result["best"]["dev"] == reference["best"]["dev"] and result["best"]["test"] == reference["best"]["test"]
    assert [(b["name"], b["test"]) for b in result["baselines"]] == \
        [(b["name"], b["test"]) for b in reference["baselines"]]
    assert [(c["id"], c["text"], c["dev"]) for c in result["candidates"]] == \
        [(c["id"], c["text"], c["dev"]) for c in reference["candidates"]]
    assert result["selection"] == reference["selection"]


def test_a_second_resume_is_refused_while_the_lock_is_held(tmp_path):
    env = _env(tmp_path)
    runs = tmp_path / "runs"
    run_dir = Path(_optimize(env, "capitalize_words", *FAST)["run_dir"])
    (run_dir / "result.json").unlink()  # as if the job had been killed
    assert [r.status for r in list_runs(runs)] == ["interrupted"]

    holder = _popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        out = run_cli("resume", run_dir.name, env_extra=env)
        assert out.returncode == 2, out.stderr
        assert f"process {holder.pid}" in out.stderr and "in use" in out.stderr
        with pytest.raises(RunLockedError) as info:
            resume(run_dir.name, runs_dir=runs)
        assert info.value.pid == holder.pid
        [info_run] = list_runs(runs)
        assert info_run.status == "running" and info_run.holder == holder.pid
        listing = run_cli("runs", "list", env_extra=env)
        assert "running" in listing.stdout and str(holder.pid) in listing.stdout
        assert run_cli("runs", "repair", run_dir.name, env_extra=env).returncode == 2
    finally:
        _stop(holder)  # SIGKILL: the operating system releases the lock
    assert [r.status for r in list_runs(runs)] == ["interrupted"]
    out = run_cli("resume", run_dir.name, env_extra=env)
    assert out.returncode == 0, out.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "complete"


def test_changed_task_data_is_refused_unless_allowed(tmp_path):
    env = _env(tmp_path)
    task = tmp_path / "task"
    shutil.copytree(REPO / "tasks" / "capitalize_words", task)
    run_dir = Path(_optimize(env, str(task), *FAST)["run_dir"])
    (run_dir / "result.json").unlink()
    dev = task / "dev.jsonl"
    rows = [json.loads(line) for line in dev.read_text().splitlines()]
    rows[0]["output"] += " Now"
    dev.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(task / "test.jsonl", "a") as fh:
        fh.write(json.dumps({"input": "a new phrase", "output": "A New Phrase"}) + "\n")

    out = run_cli("resume", run_dir.name, env_extra=env)
    assert out.returncode == 2
    assert "changed" in out.stderr and "dev: examples edited" in out.stderr and "test: 100 -> 101" in out.stderr
    assert "--allow-changed-data" in out.stderr
    assert not (run_dir / "result.json").exists()

    out = run_cli("resume", run_dir.name, "--allow-changed-data", env_extra=env)
    assert out.returncode == 0, out.stderr
    assert "warning" in out.stderr and "--allow-changed-data" in out.stderr
    assert json.loads((run_dir / "result.json").read_text())["status"] == "complete"


def test_a_log_copied_from_another_run_is_refused(tmp_path):
    env = _env(tmp_path)
    mine = Path(_optimize(env, "capitalize_words", *FAST)["run_dir"])
    other = Path(_optimize(env, "capitalize_words", *FAST, "--seed", "1")["run_dir"])
    first = json.loads((mine / "events.jsonl").read_text().splitlines()[0])
    assert first["type"] == "session" and first["run_id"] == mine.name
    (mine / "result.json").unlink()
    shutil.copy(other / "events.jsonl", mine / "events.jsonl")
    out = run_cli("resume", mine.name, env_extra=env)
    assert out.returncode == 2
    assert f"belongs to run {other.name}" in out.stderr and "another run" in out.stderr


def test_a_damaged_middle_line_is_refused_then_repaired_and_resumed(tmp_path):
    env = _env(tmp_path)
    reference = _optimize(env, "capitalize_words", *FAST)
    run_dir = Path(reference["run_dir"])
    (run_dir / "result.json").unlink()
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    usage = [i for i, line in enumerate(lines) if '"type": "usage"' in line]
    lines = lines[: usage[len(usage) // 2] + 1]  # killed half way, at a batch boundary
    bad = usage[2] + 3  # index of the damaged line, inside the fourth batch
    lines[bad] = '{"t": 1796000000.0, "type": "score", "split": "de\n'
    damaged = "".join(lines)
    (run_dir / "events.jsonl").write_text(damaged)

    out = run_cli("resume", run_dir.name, env_extra=env)
    assert out.returncode == 2
    assert f"line {bad + 1}:" in out.stderr and f"apo runs repair {run_dir.name}" in out.stderr

    rep = run_cli("runs", "repair", run_dir.name, env_extra=env)
    assert rep.returncode == 0, rep.stderr
    kept = usage[2] + 1  # back to the end of the last whole batch before the damage
    assert f"line {bad + 1} of events.jsonl is damaged" in rep.stdout
    assert f"dropped {len(lines) - kept} lines from line {kept + 1} on" in rep.stdout
    [backup] = run_dir.glob("events.jsonl.bak-*")
    assert backup.read_text() == damaged
    assert (run_dir / "events.jsonl").read_text() == "".join(lines[:kept])

    out = run_cli("resume", run_dir.name, env_extra=env)
    assert out.returncode == 0, out.stderr
    _assert_same_result(json.loads((run_dir / "result.json").read_text()), reference)


def test_a_torn_last_line_needs_no_repair(tmp_path):
    env = _env(tmp_path)
    run_dir = Path(_optimize(env, "capitalize_words", *FAST)["run_dir"])
    (run_dir / "result.json").unlink()
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('{"t": 1796000000.0, "type": "sco')
    rep = run_cli("runs", "repair", run_dir.name, env_extra=env)
    assert rep.returncode == 0 and "nothing to repair" in rep.stdout and "torn" in rep.stdout
    assert not list(run_dir.glob("events.jsonl.bak-*"))
    assert run_cli("resume", run_dir.name, env_extra=env).returncode == 0


@pytest.mark.slow
def test_ctrl_c_writes_a_partial_result_and_resume_finishes_it(tmp_path):
    args = ["optimize", "past_tense", "--target", "fake:slow", "--no-cache", "--seed", "4", "--test-limit", "40",
            "--dev-limit", "20"]
    reference = _optimize(_env(tmp_path / "ref"), *args[1:])
    env = _env(tmp_path)
    runs = tmp_path / "runs"
    proc = _popen([sys.executable, "-m", "optimizer", *args], env)
    try:
        run_dir = _wait_for_scores(runs, 120, proc)
        [running] = list_runs(runs)  # apo optimize holds the lock while it runs
        assert running.status == "running" and running.holder == proc.pid
        with pytest.raises(RunLockedError, match=f"process {proc.pid}"):
            resume(run_dir.name, runs_dir=runs)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"continue with `apo resume {run_dir.name}`" in stderr
    partial = json.loads((run_dir / "result.json").read_text())
    assert partial["status"] == "interrupted", "signalled too late: the job had finished"
    assert partial["stop_reason"] and partial["best"]["dev"]["n"] > 0 and partial["calls"] < reference["calls"]
    assert [r.status for r in list_runs(runs)] == ["interrupted"]

    out = run_cli("resume", run_dir.name, env_extra=env)
    assert out.returncode == 0, out.stderr
    _assert_same_result(json.loads((run_dir / "result.json").read_text()), reference)


def test_a_second_ctrl_c_quits_at_once(tmp_path):
    env = _env(tmp_path)
    runs = tmp_path / "runs"
    proc = _popen([sys.executable, "-c", WRAPPER, "optimize", "capitalize_words", "--target", "fake:slower",
                   "--no-cache"], env)
    try:
        run_dir = _wait_for_scores(runs, 0, proc)  # a batch of 0.2 s requests is in flight
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        started = time.time()
        _, stderr = proc.communicate(timeout=60)
        waited = time.time() - started
    finally:
        _stop(proc)
    assert proc.returncode == 130, stderr
    assert waited < 5, "the second Ctrl-C waited for the batch in flight"
    assert "Traceback" not in stderr and f"continue with `apo resume {run_dir.name}`" in stderr
    if (run_dir / "result.json").exists():  # the first Ctrl-C may have written its partial result already
        assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    assert [r.status for r in list_runs(runs)] == ["interrupted"]  # the lock went with the process


def test_an_early_ctrl_c_prints_one_line(tmp_path):
    env = _env(tmp_path)
    proc = _popen([sys.executable, "-c", WRAPPER, "optimize", "capitalize_words", "--target", "fake:slowload"], env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "loading"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        _stop(proc)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted: before the run started" in stderr
    assert not list((tmp_path / "runs").glob("*/config.json"))
