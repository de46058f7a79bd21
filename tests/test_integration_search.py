"""The demos, reflect and joint searchers end to end on the real embedded model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer import optimize

pytestmark = pytest.mark.integration

SMALL = {"target": "embedded", "seed": 0, "dev_limit": 6, "confirm_limit": 8, "test_limit": 8,
         "race_min_examples": 3, "finalists": 2}


def events_of(result) -> list[dict]:
    return [json.loads(x) for x in (Path(result.run_dir) / "events.jsonl").read_text().splitlines()]


def check_shipping(result) -> None:
    """The verdict and the shipped prompt agree, with the evidence recorded."""
    sel = result.selection
    assert result.status == "complete" and sel.sizes["train"] > 0
    assert {k: n for k, n in sel.sizes.items() if k != "train"} == {"dev": 6, "confirm": 8, "test": 8}
    assert sel.verdict in {"improved", "no significant improvement"}
    significant = {t.candidate for t in sel.finalists if t.significant}
    if sel.verdict == "improved":
        assert result.best.candidate in significant
    else:
        assert result.best.candidate == sel.incumbent and not significant
    assert all(0.0 <= t.p_adjusted <= 1.0 and t.p_adjusted >= t.p_value for t in sel.finalists)
    assert result.best.test.n == 8 and result.best.prompt_tokens and result.pareto


def test_demos_search_on_the_embedded_model():
    result = optimize("capitalize_words", searcher="demos", sets=4, k=[1, 4], bootstrap_pool=6, **SMALL)
    check_shipping(result)
    sets = [c for c in result.candidates if c.origin == "demos"]
    assert len(sets) == 4 and all(c.demos and len(c.demos) in {1, 4} for c in sets)
    train_scores = [e for e in events_of(result) if e["type"] == "score" and e["split"] == "train"]
    assert len(train_scores) == 6  # the bootstrap pool, run under the incumbent


def test_reflect_search_on_the_embedded_model():
    result = optimize("capitalize_words", searcher="reflect", rounds=1, beam=1, rewrites=2, minibatch=4, **SMALL)
    check_shipping(result)
    events = events_of(result)
    origins = [e["origin"] for e in events if e["type"] == "proposal"]
    assert origins.count("critique") == origins.count("reflection") >= 1
    assert {e["split"] for e in events if e["type"] == "score"} == {"train", "dev", "confirm", "test"}
    rewrites = [c for c in result.candidates if c.origin == "reflection"]
    assert all(c.parent == result.selection.incumbent for c in rewrites)


def test_joint_search_on_the_embedded_model():
    result = optimize("capitalize_words", searcher="joint", instructions=2, demo_sets=2, trials=4, minibatch=3,
                      top_combinations=2, k=[2], bootstrapped=0.0, **SMALL)
    check_shipping(result)
    note = next(e for e in events_of(result) if e["type"] == "note" and e["kind"] == "trials")
    assert note["data"]["trials"] == 4 and len(note["data"]["top"]) >= 1
    assert [c for c in result.candidates if c.origin == "joint"]
