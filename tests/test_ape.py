"""APE search with the packaged fake model: planted instruction, racing, budget, determinism."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from optimizer import optimize
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.tasks.task import Task
from optimizer.types import Example

PLANTED = "Reverse the letters of the word."
WORDS = ["apple", "river", "stone", "cloud", "tiger", "lemon", "piano", "house", "grape", "mouse", "chair", "bread",
         "plant", "water", "light", "sugar", "horse", "table", "night", "green", "sound", "paper", "smile", "train",
         "beach", "heart", "brain", "glass", "money", "dream", "ocean", "storm", "field", "candy", "spoon", "clock",
         "queen", "lunch", "shirt", "robot", "pearl", "flame", "frost", "blade", "crown", "wheel", "sheep", "nurse",
         "knife", "tooth", "angel", "honey", "moon", "star", "king", "rose", "wolf", "fish", "bird", "tree"]


def reversal_task() -> Task:
    ex = [Example(input=w, output=w[::-1], id=str(i)) for i, w in enumerate(WORDS)]
    return Task(name="reverse", train=ex[:20], dev=ex[20:44], test=ex[44:], metric="exact_match",
                instructions=["Spell the word backwards, please.", "Repeat the word."], shots=2)


def planted_model() -> FakeModel:
    return FakeModel(
        "fake:planted",
        proposals=["Repeat the word.", "Say the word twice.", PLANTED, "Write the first letter.", "Count letters.",
                   "Write a rhyme.", "Translate the word.", "Sort the letters.", "Write a synonym."],
        answer=lambda prompt: last_input(prompt)[::-1] if PLANTED.lower() in prompt.lower() else last_input(prompt),
    )


@pytest.fixture
def planted():
    models = []

    def factory():
        models.append(planted_model())
        return models[-1]

    register_fake("planted", factory)
    return models


def test_ape_finds_planted_instruction(planted):
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=10, rounds=1)
    assert result.status == "complete"
    assert result.best.text == PLANTED
    assert result.best.dev.acc == 1.0 and result.best.dev.n == 12  # 24 dev examples: 12 raced, 12 to confirm
    assert result.best.confirm.acc == 1.0 and result.best.confirm.n == 12
    assert result.selection.verdict == "improved"
    assert result.selection.sizes == {"train": 20, "dev": 12, "confirm": 12, "test": 16}
    assert result.best.test.acc == 1.0 and result.best.test.n == len(WORDS) - 44
    names = {b.name: b for b in result.baselines}
    assert names["no_instruction"].test.acc == 0.0
    assert names["best_human"].test.acc == 0.0
    assert len(result.best.test_acc) == result.best.test.n


def test_racing_spends_fewer_evaluations_on_bad_candidates(planted):
    result = optimize(reversal_task(), target="fake:planted", seed=3, searcher="ape", candidates=16, rounds=0,
                      tiebreak_logprob=False, race_min_examples=3)
    events = [json.loads(line) for line in open(f"{result.run_dir}/events.jsonl")]
    humans = set(reversal_task().instructions)
    ids = {e["prompt_hash"]: e["id"] for e in events if e["type"] == "candidate" and e["text"] not in humans}
    per_candidate = Counter(ids[e["prompt_hash"]] for e in events if e["type"] == "score" and e["split"] == "dev"
                            and e["prompt_hash"] in ids)
    best_id = result.best.candidate
    assert per_candidate[best_id] == 12  # the 12 raced dev examples (12 more are kept to confirm the finalists)
    others = [n for cid, n in per_candidate.items() if cid != best_id]
    assert others and max(others) < 12 and min(others) == 3
    # every candidate keeps the number of examples behind its score
    assert len(others) >= 4
    for cand in result.candidates:
        if cand.id in per_candidate:
            assert cand.dev.n == per_candidate[cand.id]


def test_budget_stop_writes_partial_result(planted):
    result = optimize(reversal_task(), target="fake:planted", seed=3, budget={"max_calls": 40})
    assert result.status == "partial" and "calls" in result.stop_reason
    assert result.calls <= 40
    stored = json.load(open(f"{result.run_dir}/result.json"))
    assert stored["status"] == "partial" and stored["calls"] == result.calls
    assert any(json.loads(line)["type"] == "budget_stop" for line in open(f"{result.run_dir}/events.jsonl"))


@pytest.mark.parametrize("max_calls", [1, 7, 60, 150])
def test_budget_is_never_exceeded(planted, max_calls):
    result = optimize(reversal_task(), target="fake:planted", seed=1, budget={"max_calls": max_calls})
    assert result.calls <= max_calls
    assert sum(len(m.calls) for m in planted) <= max_calls


def test_same_seed_same_result(planted):
    a = optimize(reversal_task(), target="fake:upper", seed=5, searcher="ape", rounds=1, cache=False)
    b = optimize(reversal_task(), target="fake:upper", seed=5, searcher="ape", rounds=1, cache=False)
    assert [c.text for c in a.candidates] == [c.text for c in b.candidates]
    assert a.best == b.best and a.calls == b.calls


def test_cache_makes_rerun_free(planted):
    a = optimize(reversal_task(), target="fake:planted", seed=2, searcher="ape", rounds=1)
    b = optimize(reversal_task(), target="fake:planted", seed=2, searcher="ape", rounds=1)
    assert a.calls > 0 and b.calls == 0
    assert b.usage["target"]["cache_hits"] > 0
    assert a.best.text == b.best.text and a.best.test == b.best.test


def test_logprob_scoring_selects_planted(planted):
    result = optimize(reversal_task(), target="fake:planted", seed=3, scoring="logprob", searcher="ape", rounds=0)
    assert result.best.text == PLANTED
    assert result.best.dev.acc is None and result.best.dev.lp == 0.0


def test_custom_metric_callable(planted):
    calls = []

    def first_letter(prediction, answers):
        calls.append(prediction)
        return float(prediction[:1] == answers[0][:1])

    result = optimize(reversal_task(), target="fake:planted", metric=first_letter, searcher="ape", rounds=0)
    assert calls and result.best.dev.acc is not None
