"""The reflect searcher on the fake model: a rule only failures reveal; failures come from train only."""

from __future__ import annotations

import re

import pytest

from optimizer import optimize
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.search.reflect import CRITIQUE_TAIL, REFLECT_INTRO, REWRITE_TAIL
from optimizer.tasks.task import Task
from optimizer.types import Example

RULE = "Repeat the word, but reverse words that start with a vowel."
WORDS = ("apple river ocean stone island cloud eagle tiger umbrella lemon orange piano igloo house anchor grape "
         "elbow mouse otter chair acorn bread emerald plant olive water ivory light usher sugar atlas horse echo "
         "table iron night amber green oyster sound easel paper inlet smile uncle train oasis beach ember heart "
         "onion brain arrow glass idea money ounce dream ultra storm alloy field eleven candy item spoon opera clock "
         "urban queen inch lunch ankle shirt enter robot omega pearl ideal flame ample frost order blade unit").split()
MODELS: list[FakeModel] = []


def vowel_rule(word: str) -> str:
    return word[::-1] if word[0] in "aeiou" else word


def reflecting_model() -> FakeModel:
    """A target that follows the rule only when the instruction states it, and a proposer that states it only
    when shown failures (an input starting with a vowel whose correct output is reversed)."""

    def answer(prompt: str) -> str:
        word = last_input(prompt)
        return vowel_rule(word) if "start with a vowel" in prompt.split("\n\n")[0] else word

    def propose(meta: str) -> str | None:
        if REFLECT_INTRO not in meta:
            return None  # APE's meta-prompts: paraphrases from the proposals list
        wrong = re.findall(r"Input: (\w+)\nFriend's output: \w*\nCorrect output: (\w+)", meta)
        vowel = any(w[0] in "aeiou" and right == w[::-1] for w, right in wrong)
        if meta.rstrip().endswith(CRITIQUE_TAIL):
            return " it never reverses the words that start with a vowel." if vowel else " it is vague."
        if meta.rstrip().endswith(REWRITE_TAIL):
            return " repeat the word, but reverse words that start with a vowel." if vowel else " repeat the word."
        return None

    model = FakeModel("fake:reflecting", proposals=["Repeat the word.", "Copy the word.", "Say the word again.",
                                                    "Write the word once more."], propose=propose, answer=answer)
    MODELS.append(model)
    return model


@pytest.fixture(autouse=True)
def fakes():
    MODELS.clear()
    register_fake("reflecting", reflecting_model)


def vowel_task() -> Task:
    ex = [Example(input=w, output=vowel_rule(w), id=str(i)) for i, w in enumerate(WORDS)]
    return Task(name="vowels", train=ex[:30], dev=ex[30:70], test=ex[70:], metric="exact_match",
                instructions=["Repeat the word."], shots=0)


def test_reflect_finds_the_rule_that_only_failures_reveal():
    task = vowel_task()
    result = optimize(task, target="fake:reflecting", searcher="reflect", seed=0)
    assert result.selection.verdict == "improved"
    assert "start with a vowel" in result.best.text and result.best.test.acc == 1.0
    assert result.best.text.startswith("Repeat the word, but reverse")  # the whole rewrite, not its first clause
    lineage = {c.id: c for c in result.candidates}
    assert lineage[result.best.candidate].origin == "reflection"
    assert lineage[result.best.candidate].parent == result.selection.incumbent
    # the proposer saw training examples only: never a dev or test input
    shown = {w for call in MODELS[0].calls if getattr(call, "prompt", None) and REFLECT_INTRO in call.prompt
             for w in re.findall(r"Input: (\w+)", call.prompt)}
    assert shown and shown <= {e.input for e in task.train}


def test_paraphrasing_ape_does_not_find_it():
    result = optimize(vowel_task(), target="fake:reflecting", seed=0, searcher="ape", candidates=8, rounds=2)
    assert "vowel" not in result.best.text
    assert result.selection.verdict == "no significant improvement"


def test_reflect_with_nothing_left_to_fix_stops_early():
    ex = [Example(input=w, output=w, id=str(i)) for i, w in enumerate(WORDS)]
    task = Task(name="copy", train=ex[:30], dev=ex[30:70], test=ex[70:], metric="exact_match",
                instructions=["Repeat the word."], shots=0)
    result = optimize(task, target="fake:reflecting", searcher="reflect", seed=0)
    assert [c.origin for c in result.candidates] == ["human"]  # no failure, no rewrite
    assert result.selection.verdict == "no significant improvement"


def test_reflect_draws_more_minibatches_while_the_prompt_gets_them_all_right():
    consonants = [w for w in WORDS if w[0] not in "aeiou"]
    vowels = [w for w in WORDS if w[0] in "aeiou"]
    train = [Example(input=w, output=w, id=f"t{i}") for i, w in enumerate(consonants[:29])]
    train.insert(17, Example(input=vowels[0], output=vowel_rule(vowels[0]), id="t-vowel"))  # the one failure
    rest = [Example(input=w, output=vowel_rule(w), id=str(i)) for i, w in enumerate(vowels[1:] + consonants[29:])]
    task = Task(name="one_failure", train=train, dev=rest[:40], test=rest[40:], metric="exact_match",
                instructions=["Repeat the word."], shots=0)
    one = optimize(task, target="fake:reflecting", searcher="reflect", seed=0, max_minibatches=1, rounds=1)
    more = optimize(task, target="fake:reflecting", searcher="reflect", seed=0, max_minibatches=3, rounds=1)
    assert more.selection.verdict == "improved" and "start with a vowel" in more.best.text
    # with one minibatch of 12 the single failing example (1 in 30) was not drawn for this seed: nothing to fix
    assert [c.origin for c in one.candidates] == ["human"]
