"""The run log: every event type round-trips, schema-1 keys are read, damage and newer schemas are refused."""

import json
import typing

import pytest

from optimizer.run import events as ev
from optimizer.run.events import RunLog, RunLogError

EXAMPLES = [
    ev.SessionStarted(resume=True, schema_version=ev.SCHEMA_VERSION),
    ev.UsageSnapshot(usage={"target": {"calls": 3, "prompt_tokens": 40}}, elapsed=1.5),
    ev.ProposalReceived(key="k" * 64, raw=" write it in capitals", origin="forward", parent=None, round=0),
    ev.CandidateAdded(id="c000", text="Write it in capitals.", origin="variation", parent="c001", round=2,
                      prompt_hash="0123456789abcdef"),
    ev.ScoreRecorded(split="dev", prompt_hash="0123456789abcdef", example="7", acc=1.0, lp=-0.5, lp_exact=False,
                     output="HELLO", error="ValueError: x"),
    ev.RungCompleted(round=1, n=10, scores={"c000": (0.9, -0.2), "c001": (None, None)}),
    ev.BudgetStopped(reason="calls used 10 of 10", phase="test"),
    ev.RunDone(status="partial"),
    ev.LabelWordsChosen(label_words={"positive": ["good", "great"]}, auto=True),
    ev.TriggerAccepted(iteration=3, position=1, candidates=9, batch_loss_before=0.7, batch_loss=0.6, stale=0,
                       passes={"forward": 10, "backward": 4}, trigger_ids=[5, 6], trigger_tokens=["a", "b"],
                       text="{sentence} a b [P] .", candidate="c002", train_loss=0.5, train_n=8, dev_acc=0.75,
                       dev_lp=-0.4, dev_n=8),
    ev.AutoPromptStep(iteration=4, position=0, candidates=9, batch_loss_before=0.6, stale=1,
                      passes={"forward": 20, "backward": 8}, best_candidate_loss=0.65),
    ev.TrainingCheckpoint(method="lora", step=25, path="adapter/step-00025", candidate="c000", train_loss=1.5,
                          dev_acc=0.5, trainable_params=1792, train_examples=48, train_seconds=3.2),
    ev.SearcherNote(searcher="grid", kind="cell", data={"i": 3, "cells": [1, 2]}),
]


def test_every_event_type_has_an_example():
    members = typing.get_args(typing.get_args(ev.Event)[0])
    assert {type(e) for e in EXAMPLES} == set(members)


def test_every_event_round_trips(tmp_path):
    log = RunLog(tmp_path / "events.jsonl")
    log.append(*EXAMPLES[:3])
    log.append(*EXAMPLES[3:])
    log.close()
    back = list(log.replay())
    assert [type(e) for e in back] == [type(e) for e in EXAMPLES]
    for original, read in zip(EXAMPLES, back):
        assert read.t is not None
        assert read.model_dump(exclude={"t"}) == original.model_dump(exclude={"t"})
    assert log.of_type(ev.ScoreRecorded)[0].lp_exact is False


def test_schema1_keys_are_read(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(json.dumps({"t": 1.0, "type": "score", "split": "test", "ih": "abc", "ex": "3", "acc": 0.0,
                                "out": "x"}) + "\n"
                    + json.dumps({"t": 1.0, "type": "candidate", "id": "c000", "text": "T", "origin": "forward",
                                  "parent": None, "round": 0, "ih": "abc"}) + "\n"
                    + json.dumps({"t": 1.0, "type": "session", "resume": False}) + "\n")
    score, cand, session = RunLog(path).replay()
    assert (score.prompt_hash, score.example, score.output, score.lp) == ("abc", "3", "x", None)
    assert cand.prompt_hash == "abc" and session.schema_version == 1


def test_torn_last_line_is_skipped_and_cut(tmp_path):
    log = RunLog(tmp_path / "events.jsonl")
    log.append(ev.RunDone(status="complete"))
    log.close()
    with open(log.path, "a") as fh:
        fh.write('{"t": 2.0, "type": "sco')
    assert [e.type for e in log.replay()] == ["done"]
    log.repair()
    log.append(ev.RunDone(status="partial"))
    assert [e.status for e in log.replay()] == ["complete", "partial"]


def test_a_damaged_middle_line_is_refused_with_its_line_number(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "done", "status": "complete"}\nnot json\n{"type": "done", "status": "complete"}\n')
    with pytest.raises(RunLogError, match=r"line 2"):
        list(RunLog(path).replay())


def test_unknown_event_type_is_refused(tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text('{"type": "teleport", "where": "mars"}\n')
    with pytest.raises(RunLogError, match="not a run event"):
        list(RunLog(path).replay())


def test_newer_schema_is_refused():
    ev.check_schema(1, "x")
    ev.check_schema(ev.SCHEMA_VERSION, "x")
    with pytest.raises(RunLogError, match="newer apo"):
        ev.check_schema(ev.SCHEMA_VERSION + 1, "runs/r/config.json")
    with pytest.raises(RunLogError, match="damaged"):
        ev.check_schema("two", "runs/r/config.json")
