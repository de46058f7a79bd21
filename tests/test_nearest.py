"""Nearest demonstrations: each input shown the training examples most like it (retrieval, the demos searcher,
reports, export and re-scoring)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from optimizer import RunConfig
from optimizer.api import evaluate_run, export_prompt, export_run
from optimizer.cli.main import main
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.run.engine import evaluate_prompt
from optimizer.tasks.nearest import NearestExamples, nearest_demos, nearest_k
from optimizer.tasks.task import load_task
from optimizer.tasks.templates import ExecutionTemplate
from optimizer.types import Example, GenerateRequest, prompt_key

GROUPS = {"alpha": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E", "foxtrot": "F", "golf": "G",
          "hotel": "H"}
SENT: list[FakeModel] = []


def copier() -> FakeModel:
    """Answers with the output of the last demonstration when its input starts like the query's, else '?'."""

    def answer(prompt: str) -> str:
        query = last_input(prompt)
        pairs = re.findall(r"Input: (.*)\nOutput: (.*)\n\n", prompt)
        return pairs[-1][1] if pairs and pairs[-1][0][:4] == query[:4] else "?"

    model = FakeModel("fake:copier", proposals=["Name the group."], answer=answer)
    SENT.append(model)
    return model


@pytest.fixture(autouse=True)
def fakes():
    register_fake("copier", copier)
    SENT.clear()


def rows(numbers: range) -> list[dict]:
    return [{"input": f"{word}-{n}", "output": label, "id": f"{word}{n}"} for n in numbers
            for word, label in GROUPS.items()]


def task_dir(root: Path) -> Path:
    """A task where only a demonstration from the query's own group, shown last, makes the target right."""
    folder = root / "groups"
    folder.mkdir()
    for name, part in (("train", rows(range(3))), ("dev", rows(range(3, 9))), ("test", rows(range(9, 12)))):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (folder / "task.yaml").write_text("name: groups\nmetric: exact_match\nshots: 2\n"
                                      "instructions:\n  - Name the group.\n"
                                      "data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n")
    return folder


def test_the_nearest_examples_are_the_most_alike_nearest_last_never_the_query_itself():
    train = [Example(input=t, output=t.upper(), id=str(i)) for i, t in
             enumerate(["apple pie", "banana split", "apple tart", "cherry tart", "apple"])]
    near = NearestExamples(train)
    chosen = near.select(Example(input="apple tart", output="?"), 3)
    assert [ex.input for ex in chosen] == ["cherry tart", "apple pie", "apple"]  # nearest last, never itself
    assert near.select(Example(input="apple tart", output=""), 3) == chosen  # the gold output plays no part
    assert [ex.id for ex in near.select(Example(input="zzz", output=""), 2)] == ["1", "0"]  # all equal: train order
    assert len(near.select(Example(input="x", output=""), 99)) == 5
    empty = NearestExamples([Example(input="", output="a", id="0"), Example(input=" ", output="b", id="1")])
    assert [ex.id for ex in empty.select(Example(input="q", output=""), 2)] == ["1", "0"]  # all equal: train order


def test_nearest_demonstration_ids_name_k():
    assert nearest_k(nearest_demos(8)) == 8
    assert nearest_k(None) is None and nearest_k(("w1",)) is None and nearest_k(("@nearest:8", "w1")) is None
    with pytest.raises(ValueError):
        nearest_demos(0)
    assert RunConfig.from_options("t", nearest=[]).demos.nearest == []
    with pytest.raises(Exception, match="nearest"):
        RunConfig.from_options("t", nearest=[0])


def test_the_demos_search_ships_nearest_demonstrations_and_they_export_and_reproduce(tmp_path, capsys):
    folder = task_dir(tmp_path)
    assert main(["optimize", str(folder), "--target", "fake:copier", "--searcher", "demos", "--demo-sets", "4",
                 "--demo-k", "2,4", "--demo-nearest", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    best = result["best"]
    assert result["selection"]["verdict"] == "improved", result["selection"]
    assert best["demos"] == ["@nearest:2"] and best["test"]["acc"] == 1.0 and best["demo_examples"] == []
    assert result["baselines"][0]["test"]["acc"] < 0.5
    task = load_task(str(folder))
    near = NearestExamples(task.train)
    sent = {c.prompt for c in SENT[0].calls if isinstance(c, GenerateRequest)}
    expected = {ex.input: ExecutionTemplate(demos=tuple(near.select(ex, 2))).context(best["text"], ex)
                for ex in task.test}
    assert set(expected.values()) <= sent  # each test input was shown its own two nearest, the nearest last

    exported = export_prompt(result["run_id"])
    assert exported.nearest == 2 and [d["id"] for d in exported.demonstrations] == [ex.id for ex in task.train]
    assert "{demonstrations}" in exported.template and exported.manifest.demonstrations.startswith("each input's 2")
    assert all(exported.render(i) == p for i, p in expected.items())
    data = json.loads(export_run(result["run_id"], "json"))
    assert data["nearest"] == 2 and data["retriever"]["similarity"] == "cosine"
    module: dict = {}
    exec(compile(export_run(result["run_id"], "python"), "prompt.py", "exec"), module)
    assert all(module["render"](i) == p for i, p in expected.items())
    assert export_run(result["run_id"], "text") == exported.template

    again = evaluate_run(result["run_id"], cache=False)
    assert again.matches and again.differing == [] and again.demos == ["@nearest:2"]
    assert main(["runs", "show", result["run_id"]]) == 0
    assert "2 nearest" in capsys.readouterr().out
    assert main(["leaderboard", "--format", "md"]) == 0
    assert "| 2 nearest |" in capsys.readouterr().out


def test_a_nearest_prompt_scores_what_its_chosen_demonstrations_score_on_the_embedded_model():
    """The local engine batches rows whose demonstrations differ per input: each row gets its own."""
    task = load_task("past_tense", seed=0)
    config = RunConfig.from_options("past_tense", target="embedded", cache=False)
    _, examples, nearest = evaluate_prompt(config, prompt_key("Write the past tense.", nearest_demos(3)),
                                           split="test", limit=6, task=task)
    near = NearestExamples(task.train)
    for ex in examples:
        ids = [d.id for d in near.select(ex, 3)]
        _, _, one = evaluate_prompt(config, prompt_key("Write the past tense.", ids), split="test", limit=6,
                                    task=task)
        assert one[ex.id].output == nearest[ex.id].output and one[ex.id].acc == nearest[ex.id].acc
