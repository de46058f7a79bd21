"""Tasks whose answers span lines: the answer runs to a blank line and is scored whole."""

from __future__ import annotations

import pytest

from optimizer import optimize
from optimizer.api import evaluate_run, export_run
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.tasks.task import Task
from optimizer.tasks.templates import ExecutionTemplate, execution_template
from optimizer.types import Example

WORDS = ["apple", "pear", "plum", "fig", "kiwi", "lime", "lemon", "mango", "peach", "grape", "melon", "guava"]


def lines_task() -> Task:
    """Input "a, b, c"; output the same words one a line."""
    ex = []
    for i in range(40):
        words = [WORDS[(i + j * 5) % len(WORDS)] for j in range(3)]
        ex.append(Example(input=", ".join(words), output="\n".join(words), id=str(i)))
    return Task(name="lines", train=ex[:12], dev=ex[12:28], test=ex[28:], metric="exact_match",
                instructions=["Write each word on its own line."], shots=2)


def list_model() -> FakeModel:
    """Answers every execution prompt right, then keeps talking as a completion model does."""
    return FakeModel("fake:lines", answer=lambda p: "\n".join(last_input(p).split(", ")) + "\n\nInput: more")


@pytest.fixture(autouse=True)
def fakes():
    register_fake("lines", list_model)


def test_a_template_for_multi_line_answers_stops_at_a_blank_line_and_keeps_every_line():
    single, multi = ExecutionTemplate(), ExecutionTemplate(multiline=True)
    assert single.stop == ("\n",) and multi.stop == ("\n\n", "\nInput:")
    assert single.answer("\n a b\nc") == "a b"
    assert multi.answer("  a\nb  \nc\n\nd") == "a\nb\nc" and multi.answer("a\nb\nInput: x") == "a\nb"
    assert multi.generate_request("Do it.", Example(input="x", output="y")).stop == multi.stop
    assert "blank line" in multi.decoding and "first newline" in single.decoding
    assert multi.with_demos(()).multiline  # a prompt's own demonstrations keep the answer format


def test_the_answer_format_comes_from_the_task():
    assert execution_template(lines_task(), shots=2, style="completion", seed=0).multiline
    one_line = lines_task().model_copy(update={"train": [Example(input="a", output="b", id="x")],
                                              "dev": [Example(input="a", output="b", id="y")] * 2,
                                              "test": [Example(input="a", output="b", id="z")]})
    assert not execution_template(one_line, shots=1, style="completion", seed=0).multiline


def test_multi_line_answers_are_scored_whole_and_exported_with_their_decoding(tmp_path):
    result = optimize(lines_task(), target="fake:lines", seed=0, searcher="ape", candidates=2, rounds=0,
                      runs_dir=tmp_path, cache=False)
    assert result.multiline_answers
    best = result.best
    assert best is not None and best.test is not None and best.test.acc == 1.0  # the first line alone would score 0
    exported = export_run(result.run_id, "json", runs_dir=tmp_path)
    assert "blank line" in exported
    again = evaluate_run(result.run_id, task=lines_task(), runs_dir=tmp_path, cache=False)
    assert again.matches and again.acc == 1.0


@pytest.mark.integration
def test_the_embedded_model_answers_a_multi_line_task_in_several_lines():
    from optimizer import evaluate

    scored = evaluate(lines_task(), "Write each word on its own line.", "embedded", split="dev", limit=8)
    assert scored.n == 8
    predictions = [r["prediction"] for r in scored.per_example]
    assert sum("\n" in p for p in predictions) >= 4, predictions  # answers ran past the first newline
    assert not any("\n\n" in p or "Input:" in p for p in predictions)  # and stopped at the blank line
