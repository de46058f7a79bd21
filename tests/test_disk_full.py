"""A full disk while the journal is written stops the job cleanly: the journal stays whole and the run resumes
to the result an undisturbed run gives."""

from __future__ import annotations

import errno
import json
import os

import pytest

from optimizer import optimize, resume
from optimizer.errors import ApoError
from optimizer.run import events

JOB = dict(target="fake:upper", searcher="ape", rounds=1, dev_limit=10, test_limit=10)


def test_a_full_disk_keeps_the_journal_whole_and_the_run_resumable(tmp_path, monkeypatch):
    clean = optimize("capitalize_words", runs_dir=tmp_path / "clean", cache=False, **JOB)

    real_write = os.write
    writes = {"n": 0}

    def full_after_some(fd, data):
        writes["n"] += 1
        if writes["n"] == 8:  # the eighth journal write: half of it lands, then the disk is full
            real_write(fd, bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(events.os, "write", full_after_some)
    runs = tmp_path / "runs"
    with pytest.raises(ApoError, match="No space left on device.*apo resume") as stopped:
        optimize("capitalize_words", runs_dir=runs, cache=False, **JOB)
    monkeypatch.setattr(events.os, "write", real_write)
    assert writes["n"] == 8
    (run_dir,) = runs.iterdir()
    assert run_dir.name in str(stopped.value)
    raw = (run_dir / "events.jsonl").read_bytes()
    assert raw.endswith(b"\n"), "the half-written batch was not cut back"
    assert all(json.loads(line) for line in raw.splitlines())
    assert not (run_dir / "result.json").exists()

    resumed = resume(run_dir.name, runs_dir=runs)
    assert resumed.best == clean.best and resumed.baselines == clean.baselines
    assert [c.text for c in resumed.candidates] == [c.text for c in clean.candidates]
