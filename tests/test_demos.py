"""The demos searcher on the fake model: demonstration sets, bootstrapping, order and k, APE's demo_search."""

from __future__ import annotations

import json
import re

import pytest
from test_ape import WORDS

from optimizer import optimize
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.tasks.task import Task
from optimizer.types import Example

GOOD = {"apple", "river", "stone", "cloud"}
"""The training examples whose demonstrations make the fake target reverse words."""


def demo_inputs(prompt: str) -> list[str]:
    """The demonstration inputs of a rendered prompt (every ``Input:`` but the last)."""
    return re.findall(r"Input:[ \t]*(.*)", prompt)[:-1]


def picky_model() -> FakeModel:
    """Answers right (reverses the word) only when at least two of the GOOD examples are shown as demonstrations."""

    def answer(prompt: str) -> str:
        word = last_input(prompt)
        return word[::-1] if len(GOOD & set(demo_inputs(prompt))) >= 2 else word

    return FakeModel("fake:picky", proposals=["Reverse the word."], answer=answer)


def short_words_model() -> FakeModel:
    """Right on words with an e, whatever the prompt."""
    return FakeModel("fake:short", answer=lambda p: last_input(p)[::-1] if "e" in last_input(p) else "?")


@pytest.fixture(autouse=True)
def fakes():
    register_fake("picky", picky_model)
    register_fake("short", short_words_model)


def picky_task() -> Task:
    ex = [Example(input=w, output=w[::-1], id=f"w{i}") for i, w in enumerate(WORDS)]
    return Task(name="picky", train=ex[:20], dev=ex[20:44], test=ex[44:], metric="exact_match",
                instructions=["Reverse the word."], shots=2)


def test_demos_search_finds_the_demonstrations_that_make_the_target_right():
    result = optimize(picky_task(), target="fake:picky", searcher="demos", seed=0)
    rows = {b.name: b for b in result.baselines}
    assert len(GOOD & {d.input for d in rows["best_human"].demo_examples}) < 2, "the run's own demonstrations fail"
    sel = result.selection
    assert sel.verdict == "improved", sel
    assert result.best.demos is not None and len(GOOD & {d.input for d in result.best.demo_examples}) >= 2
    assert [d.id for d in result.best.demo_examples] == list(result.best.demos)  # in the order shown
    assert result.best.test.acc == 1.0
    # the baselines keep the run's fixed demonstrations
    assert rows["best_human"].demos is None and rows["no_instruction"].demos is None
    assert rows["best_human"].test.acc == 0.0 and len(rows["best_human"].demo_examples) == 2


def test_demo_sets_are_recorded_with_ids_order_and_k():
    result = optimize(picky_task(), target="fake:picky", searcher="demos", seed=0, sets=6, k=[1, 3],
                      bootstrapped=0.0)
    events = [json.loads(x) for x in open(f"{result.run_dir}/events.jsonl")]
    sets = [e for e in events if e["type"] == "candidate" and e["origin"] == "demos"]
    assert [len(e["demos"]) for e in sets] == [1, 3, 1, 3, 1, 3]
    assert all(e["parent"] == result.selection.incumbent for e in sets)
    reordered = [e for e in events if e["type"] == "candidate" and e["origin"] == "reorder"]
    by_id = {e["id"]: e for e in sets}
    for e in reordered:  # a reordering shows the same examples in another order
        assert sorted(e["demos"]) == sorted(by_id[e["parent"]]["demos"]) and e["demos"] != by_id[e["parent"]]["demos"]


def test_bootstrapped_sets_are_made_of_training_examples_answered_right():
    ex = [Example(input=w, output=w[::-1], id=f"w{i}") for i, w in enumerate(WORDS)]
    task = Task(name="short", train=ex[:30], dev=ex[30:50], test=ex[50:], metric="exact_match",
                instructions=["Reverse the word."], shots=1)
    result = optimize(task, target="fake:short", searcher="demos", seed=1, sets=4, k=[2, 3], bootstrapped=0.5,
                      bootstrap_pool=30)
    events = [json.loads(x) for x in open(f"{result.run_dir}/events.jsonl")]
    right = {e["example"] for e in events if e["type"] == "score" and e["split"] == "train" and e["acc"] == 1.0}
    wrong = {e["example"] for e in events if e["type"] == "score" and e["split"] == "train" and e["acc"] == 0.0}
    assert right and wrong, "the pool should hold examples answered right and wrong"
    sets = [e["demos"] for e in events if e["type"] == "candidate" and e["origin"] == "demos"]
    assert all(set(s) <= right for s in sets[:2])  # the bootstrapped half
    assert not any(set(s) & {e.id for e in task.dev} for s in sets)


def test_ape_with_demo_search_gives_its_best_instruction_demonstrations():
    result = optimize(picky_task(), target="fake:picky", seed=0, searcher="ape", candidates=4, rounds=0,
                      demo_search=True, sets=8)
    demo_sets = [c for c in result.candidates if c.origin == "demos"]
    assert demo_sets and len({c.parent for c in demo_sets}) == 1
    assert result.selection.verdict == "improved" and result.best.demos is not None


def test_the_final_table_fits_an_80_column_terminal_and_lists_the_shipped_demonstrations():
    from rich.console import Console

    from optimizer.cli.render import render_result

    result = optimize(picky_task(), target="fake:picky", searcher="demos", seed=0)
    console = Console(width=80, record=True, markup=False, highlight=False)
    render_result(json.loads(result.model_dump_json()), console)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    table = text.split("verdict:")[0]
    assert "…" not in table, table  # no value or header cut short
    best = next(line for line in table.splitlines() if line.split()[:1] == ["best"])
    assert best.split()[2] == str(len(result.best.demos))  # the count; the ids follow the table
    assert f"{result.best.test.acc:.3f}" in best and f"{result.best.dev.acc:.3f}" in best
    ids = text.split("demonstrations (")[1].split(": ", 1)[1]
    assert " ".join(ids.split()).startswith(", ".join(result.best.demos))
    # long answers have large log-probabilities, and a test split may hold thousands: still no cell cut short
    data = json.loads(result.model_dump_json())
    for p in [data["best"], *data["baselines"]]:
        p["dev"]["lp"], p["test"]["lp"], p["test"]["n"] = -123.456, -4567.8, 10000
    console = Console(width=80, record=True, markup=False, highlight=False)
    render_result(data, console)
    wide = console.export_text().split("verdict:")[0]
    assert "…" not in wide and "-123 " in wide and "-4568" in wide, wide
