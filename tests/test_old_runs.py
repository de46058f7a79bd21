"""Runs written before the typed run log (schema 1) still open in runs show, the leaderboard and resume.

The folders under tests/fixtures/runs_v1 were written by the first release: a real APE job on
the embedded SmolLM2, a real AutoPrompt job on SPLADE-tiny, complete and budget-stopped APE
jobs on the fake model, and a copy of the complete fake job cut in the middle of a line (a kill).
"""

import json
import shutil
from pathlib import Path

import pytest

from optimizer import build_leaderboard, resume
from optimizer.cli.main import main
from optimizer.report.build import summarize_run
from optimizer.run.events import RunLog, RunLogError

FIXTURES = Path(__file__).parent / "fixtures" / "runs_v1"
OLD_TASKS = Path(__file__).parent / "fixtures" / "tasks_v1"
"""The bundled tasks these runs were made on, before their dev and test splits grew."""


def test_fixtures_are_schema_1():
    for run in FIXTURES.iterdir():
        assert json.loads((run / "config.json").read_text())["schema"] == 1
        assert '"ih"' in (run / "events.jsonl").read_text()


@pytest.mark.parametrize("name", ["ape-embedded-capitalize_words", "autoprompt-splade-sst2",
                                  "ape-fake-capitalize_words"])
def test_finished_old_runs_summarize(name):
    stored = json.loads((FIXTURES / name / "result.json").read_text())
    s = summarize_run(FIXTURES / name)
    assert s.status == stored["status"] == "complete" and s.best_text == stored["best"]["text"]
    assert s.test.acc == stored["best"]["test"]["acc"] and s.trajectory
    assert s.vs_none is not None and s.vs_none.ci is not None


def test_partial_old_run_summarizes():
    s = summarize_run(FIXTURES / "ape-fake-topic-partial")
    assert s.status == "partial" and s.stop_reason and s.calls == 114


def test_interrupted_old_run_summarizes_from_its_log():
    s = summarize_run(FIXTURES / "ape-fake-capitalize_words-killed")
    assert s.status == "interrupted" and s.candidates and s.best_text and s.calls


def test_old_runs_in_the_leaderboard(capsys):
    board = build_leaderboard(FIXTURES)
    keys = {(r.task, r.searcher, r.target) for r in board.rows}
    assert {("capitalize_words", "ape", "embedded"), ("sst2", "autoprompt", "embedded:splade-tiny"),
            ("topic", "ape", "fake:upper"), ("capitalize_words", "ape", "fake:upper")} <= keys
    assert not board.skipped
    assert main(["leaderboard", str(FIXTURES), "--format", "md"]) == 0
    assert "capitalize" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["ape-embedded-capitalize_words", "autoprompt-splade-sst2"])
def test_old_runs_show(name, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("APO_RUNS_DIR", str(tmp_path))
    assert main(["runs", "show", str(FIXTURES / name)]) == 0
    out = capsys.readouterr().out
    assert "top candidates" in out


def test_killed_old_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    monkeypatch.setenv("APO_TASKS_DIR", str(OLD_TASKS))  # the task's data as the run was made on it
    runs = tmp_path / "runs"
    shutil.copytree(FIXTURES / "ape-fake-capitalize_words-killed", runs / "killed")
    done = json.loads((FIXTURES / "ape-fake-capitalize_words" / "result.json").read_text())
    result = resume("killed", runs_dir=runs)
    assert result.status == "complete"
    assert result.best.text == done["best"]["text"]
    assert result.best.test.acc == done["best"]["test"]["acc"] and result.best.dev.acc == done["best"]["dev"]["acc"]
    assert [b.test.acc for b in result.baselines] == [b["test"]["acc"] for b in done["baselines"]]
    events = list(RunLog(runs / "killed" / "events.jsonl").replay())  # schema 1 then schema 2 lines
    sessions = [e for e in events if e.type == "session"]
    assert [s.schema_version for s in sessions] == [1, 2]
    # nothing recorded before the kill was scored again
    keys = [(e.split, e.prompt_hash, e.example, e.acc is not None) for e in events if e.type == "score"]
    assert len(keys) == len(set(keys))


def test_a_run_from_a_newer_apo_is_refused(tmp_path):
    run = tmp_path / "runs" / "new"
    shutil.copytree(FIXTURES / "ape-fake-topic-partial", run)
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "schema": 99}))
    with pytest.raises(RunLogError, match="newer apo"):
        resume("new", runs_dir=tmp_path / "runs")
