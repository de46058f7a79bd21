"""The joint searcher (instructions × demonstration sets under optuna's TPE sampler) on the fake model."""

from __future__ import annotations

import json

import pytest
from test_ape import PLANTED, WORDS
from test_demos import GOOD, demo_inputs

from optimizer import optimize
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.tasks.task import Task
from optimizer.types import Example


def both_model() -> FakeModel:
    """Right only with the planted instruction *and* at least two GOOD demonstrations."""

    def answer(prompt: str) -> str:
        word = last_input(prompt)
        ok = PLANTED.lower() in prompt.lower() and len(GOOD & set(demo_inputs(prompt))) >= 2
        return word[::-1] if ok else word

    return FakeModel("fake:both", proposals=["Repeat the word.", "Say the word twice.", PLANTED, "Count letters.",
                                             "Write a rhyme."], answer=answer)


@pytest.fixture(autouse=True)
def fakes():
    register_fake("both", both_model)


def both_task() -> Task:
    ex = [Example(input=w, output=w[::-1], id=f"w{i}") for i, w in enumerate(WORDS)]
    return Task(name="both", train=ex[:20], dev=ex[20:44], test=ex[44:], metric="exact_match",
                instructions=["Repeat the word."], shots=2)


def test_joint_search_finds_the_instruction_and_the_demonstrations_together():
    result = optimize(both_task(), target="fake:both", searcher="joint", seed=0, trials=30, demo_sets=8,
                      instructions=6)
    assert result.selection.verdict == "improved"
    assert result.best.text == PLANTED and result.best.demos is not None
    assert len(GOOD & {d.input for d in result.best.demo_examples}) >= 2
    assert result.best.test.acc == 1.0
    events = [json.loads(x) for x in open(f"{result.run_dir}/events.jsonl")]
    note = next(e for e in events if e["type"] == "note" and e["kind"] == "trials")
    assert note["data"]["trials"] == 30 and note["data"]["top"][0]["minibatch_mean"] == 1.0


def test_joint_trials_are_the_same_for_the_same_seed_and_differ_for_another():
    def trace(seed: int) -> list:
        result = optimize(both_task(), target="fake:both", searcher="joint", seed=seed, trials=12)
        events = [json.loads(x) for x in open(f"{result.run_dir}/events.jsonl")]
        return [(e["prompt_hash"], e["example"]) for e in events if e["type"] == "score" and e["split"] == "dev"]

    assert trace(0) == trace(0)
    assert trace(0) != trace(1)


def test_joint_options_belong_to_the_joint_searcher():
    from optimizer.config import RunConfig
    from optimizer.errors import UsageError

    config = RunConfig.from_options("topic", searcher="joint", trials=5, k=[1, 2], minibatch=4)
    assert config.joint.trials == 5 and config.joint.minibatch == 4 and config.demos.k == [1, 2]
    with pytest.raises(UsageError, match=r"trials: joint option, but the searcher is demos \(the default\)"):
        RunConfig.from_options("topic", trials=5)
    with pytest.raises(UsageError, match="trials: joint option, but the searcher is ape; choose searcher joint"):
        RunConfig.from_options("topic", searcher="ape", trials=5)


def demos_only_model() -> FakeModel:
    """Right with at least two GOOD demonstrations, whatever the instruction says."""

    def answer(prompt: str) -> str:
        word = last_input(prompt)
        return word[::-1] if len(GOOD & set(demo_inputs(prompt))) >= 2 else word

    return FakeModel("fake:demos-only", proposals=["Count letters.", "Write a rhyme.", "Give a 5-point answer."],
                     answer=answer)


def test_each_raced_combination_is_also_raced_under_the_incumbents_instruction():
    register_fake("demos-only", demos_only_model)
    result = optimize(both_task(), target="fake:demos-only", searcher="joint", seed=0, trials=30, demo_sets=8,
                      instructions=3)
    joint = [c for c in result.candidates if c.origin == "joint"]
    proposed = [c for c in joint if c.text != "Repeat the word."]
    assert proposed, "the trials should put proposed instructions among the raced combinations"
    for c in proposed:  # beside it: its demonstrations under the incumbent's instruction
        assert any(o.text == "Repeat the word." and o.demos == c.demos for o in joint), c.id
    assert any(o.parent in {c.id for c in proposed} for o in joint)  # a new one descends from its combination
    raced = {c.id for c in result.candidates if c.dev.n}
    assert {c.id for c in joint} <= raced
