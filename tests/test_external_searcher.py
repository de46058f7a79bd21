"""A searcher defined outside apo runs through the public Searcher protocol: racing, budget, cache, resume,
leaderboard."""

from __future__ import annotations

import json

import pytest
from test_ape import PLANTED, reversal_task

from optimizer import SearchContext, Searcher, SearcherNote, UsageError, build_leaderboard, optimize, resume
from optimizer.cli.main import main
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.types import GenerateRequest

VERBS = ["Repeat", "Sort", "Reverse", "Count"]


class WordGrid:
    """Tries '<verb> the letters of the word.' for a few verbs, races them, then asks the proposer to vary the best."""

    name = "word-grid"
    requires = frozenset({"generate"})

    def __init__(self, die_at: int | None = None) -> None:
        self.die_at = die_at

    def run(self, ctx: SearchContext) -> None:
        looked = {e.data["verb"] for e in ctx.events(SearcherNote) if e.searcher == self.name}
        field = []
        for i, verb in enumerate(VERBS):
            if self.die_at == i:
                raise KeyboardInterrupt  # a kill between two steps
            cand = ctx.add(f"{verb} the letters of the word.", origin="grid")
            field.append(cand)
            if verb not in looked:  # a cheap first look, recorded so a resumed run does not repeat the note
                ctx.evaluate([cand.text], ctx.dev[:2])
                ctx.record(SearcherNote(searcher=self.name, kind="looked", data={"verb": verb}))
        ranked = ctx.race(field, round=0)
        request = GenerateRequest(prompt=f"Vary: {ranked[0].text}", max_tokens=16, temperature=0.7, seed=ctx.seed)
        [raw] = ctx.generate_proposals([request], origin="variation", parents=[ranked[0].id], round=1)
        child = ctx.add(raw.strip(), origin="variation", parent=ranked[0].id, round=1)
        ctx.race([ranked[0]] + ([child] if child else []), round=1)


def grid_model() -> FakeModel:
    def answer(prompt: str) -> str:
        if prompt.startswith("Vary:"):
            return "Turn the word around."
        return last_input(prompt)[::-1] if PLANTED.lower() in prompt.lower() else last_input(prompt)

    return FakeModel("fake:grid", answer=answer)


@pytest.fixture(autouse=True)
def grid():
    register_fake("grid", grid_model)


def test_the_protocol_is_public_and_runtime_checkable():
    assert isinstance(WordGrid(), Searcher)


def test_external_searcher_runs_races_and_shows_on_the_leaderboard(tmp_path, capsys):
    result = optimize(reversal_task(), target="fake:grid", searcher=WordGrid(), runs_dir=tmp_path, seed=1)
    assert result.status == "complete" and result.searcher == "word-grid"
    assert result.best.text == PLANTED and result.best.test.acc == 1.0
    events = [json.loads(x) for x in open(f"{result.run_dir}/events.jsonl")]
    rungs = [e for e in events if e["type"] == "rung" and e["round"] == 0]
    assert [r["n"] for r in rungs] == [5, 10, 12]  # successive halving over the 12 raced dev examples (12 confirm)
    assert len(rungs[-1]["scores"]) < len(VERBS)
    assert any(e["type"] == "candidate" and e["origin"] == "variation" for e in events)
    config = json.loads(open(f"{result.run_dir}/config.json").read())["config"]
    assert config["searcher"] == "word-grid"
    board = build_leaderboard(tmp_path)
    [row] = [r for r in board.rows if r.searcher == "word-grid"]
    assert row.best.best_text == PLANTED and row.best.vs_none.diff == 1.0
    assert main(["leaderboard", str(tmp_path), "--searcher", "word-grid", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0]["searcher"] == "word-grid"


def test_external_searcher_uses_the_cache_and_the_budget(tmp_path):
    first = optimize(reversal_task(), target="fake:grid", searcher=WordGrid(), runs_dir=tmp_path / "a")
    again = optimize(reversal_task(), target="fake:grid", searcher=WordGrid(), runs_dir=tmp_path / "b")
    assert first.calls > 0 and again.calls == 0 and again.usage["target"]["cache_hits"] > 0
    assert again.best.text == first.best.text
    capped = optimize(reversal_task(), target="fake:grid", searcher=WordGrid(), runs_dir=tmp_path / "c",
                      cache=False, budget={"max_calls": 40})
    assert capped.status == "partial" and capped.calls <= 40 and "calls" in capped.stop_reason


def test_external_searcher_resumes_after_a_kill(tmp_path):
    whole = optimize(reversal_task(), target="fake:grid", searcher=WordGrid(), runs_dir=tmp_path / "a", cache=False)
    with pytest.raises(KeyboardInterrupt):
        optimize(reversal_task(), target="fake:grid", searcher=WordGrid(die_at=3), runs_dir=tmp_path / "b",
                 cache=False)
    [run_dir] = list((tmp_path / "b").iterdir())
    before = [json.loads(x) for x in open(run_dir / "events.jsonl")]
    assert sum(e["type"] == "note" for e in before) == 3 and not (run_dir / "result.json").exists()
    with pytest.raises(UsageError, match="not built into apo"):  # the stored name is not a built-in searcher
        resume(run_dir.name, runs_dir=tmp_path / "b", task=reversal_task())
    done = resume(run_dir.name, runs_dir=tmp_path / "b", searcher=WordGrid(), task=reversal_task())
    assert done.best.text == whole.best.text and done.best.test.acc == whole.best.test.acc
    assert done.calls == whole.calls  # nothing recorded was asked again
    after = [json.loads(x) for x in open(run_dir / "events.jsonl")]
    assert sum(e["type"] == "note" for e in after) == len(VERBS)
    keys = [(e["split"], e["prompt_hash"], e["example"], "acc" in e) for e in after if e["type"] == "score"]
    assert len(keys) == len(set(keys))
