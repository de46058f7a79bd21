"""apo export and apo eval --from-run: the shipped prompt as the target saw it, in every format, and its test score
reproduced from the run alone."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from test_ape import WORDS

from optimizer import UsageError, optimize
from optimizer.api import evaluate_run, export_prompt, export_run
from optimizer.cli.main import main
from optimizer.export import shipped_prompt
from optimizer.models.providers.fake import FakeModel, last_input, register_fake
from optimizer.tasks.task import Task, load_task
from optimizer.tasks.templates import ExecutionTemplate
from optimizer.types import Example, GenerateRequest, Message

V1 = Path(__file__).parent / "fixtures" / "runs_v1"
SEEN: list[FakeModel] = []
"""Every recording fake built, newest last (one per run or evaluation)."""
GOOD = {"apple", "river", "stone", "cloud"}


def _recorded(model: FakeModel) -> FakeModel:
    SEEN.append(model)
    return model


def upper_model() -> FakeModel:
    """Writes the input in capitals when the prompt asks for capital letters; otherwise echoes it."""
    return _recorded(FakeModel(
        "fake:rec", proposals=["Repeat the input.", "Write the input in capital letters.", "Shout the input."],
        answer=lambda p: last_input(p).upper() if "capital letters" in p.lower() else last_input(p), chat=True))


def picky_model() -> FakeModel:
    """Reverses the word only when at least two of the GOOD words are shown as demonstrations."""

    def answer(prompt: str) -> str:
        word, shown = last_input(prompt), re.findall(r"Input:[ \t]*(.*)", prompt)[:-1]
        return word[::-1] if len(GOOD & set(shown)) >= 2 else word

    return _recorded(FakeModel("fake:xpicky", proposals=["Reverse the word."], answer=answer))


@pytest.fixture(autouse=True)
def fakes():
    register_fake("rec", upper_model)
    register_fake("xpicky", picky_model)
    SEEN.clear()


def sent_prompts(model: FakeModel) -> set[str]:
    """The execution prompts a fake was sent (completion text, or the one chat message)."""
    return {c.prompt if c.prompt is not None else c.messages[0].content
            for c in model.calls if isinstance(c, GenerateRequest)}


def picky_task_dir(root: Path) -> Path:
    """A task folder on disk (so the command line loads it again by path) where demonstrations decide the score."""
    folder = root / "picky"
    folder.mkdir()
    rows = [{"input": w, "output": w[::-1], "id": f"w{i}"} for i, w in enumerate(WORDS)]
    for name, part in (("train", rows[:20]), ("dev", rows[20:44]), ("test", rows[44:])):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (folder / "task.yaml").write_text("name: picky\nmetric: exact_match\nshots: 2\n"
                                      "instructions:\n  - Reverse the word.\n"
                                      "data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n")
    return folder


def check_formats(run_id: str, runs_dir=None) -> str:
    """Every format parses and says the same prompt; returns the text format."""
    text = export_run(run_id, "text", runs_dir)
    assert text.count("{input}") == 1 and text.endswith("Input: {input}\nOutput:")
    data = json.loads(export_run(run_id, "json", runs_dir))
    assert data["template"] == text and data["placeholder"] == "{input}"
    chat = json.loads(export_run(run_id, "chat", runs_dir))
    assert chat == [{"role": "user", "content": text}]
    module: dict = {}
    exec(compile(export_run(run_id, "python", runs_dir), "prompt.py", "exec"), module)
    assert module["render"]("x") == text.replace("{input}", "x")
    assert module["messages"]("x") == [{"role": "user", "content": text.replace("{input}", "x")}]
    assert module["MANIFEST"] == data["manifest"] and module["STYLE"] == data["style"]
    return text


def test_every_format_is_the_prompt_the_target_was_sent():
    result = optimize("capitalize_words", target="fake:rec", searcher="ape", rounds=0, candidates=3, dev_limit=6,
                      test_limit=6)
    check_formats(result.run_id)
    exported = export_prompt(result.run_id)
    best = result.best
    assert exported.instruction == best.text and best.demos is None
    assert [d["id"] for d in exported.demonstrations] == [d.id for d in best.demo_examples]
    seen = sent_prompts(SEEN[0])
    test = load_task("capitalize_words").test[:6]
    assert all(exported.render(ex.input) in seen for ex in test)  # the very text the target got for each example
    template = ExecutionTemplate(demos=tuple(best.demo_examples))
    assert exported.render(test[0].input) == template.context(best.text, test[0])
    m = exported.manifest
    assert (m.run_id, m.task, m.target, m.seed, m.execution_style) == (result.run_id, "capitalize_words", "fake:rec",
                                                                       0, "completion")
    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    assert m.task_sha256 == config["provenance"]["task"]["sha256"] and len(m.task_sha256) == 64
    assert m.git_commit == config["provenance"]["git_commit"]
    assert m.test == best.test.model_dump() and m.dev == best.dev.model_dump()
    assert m.test_ci95 is not None and m.test_ci95[0] <= best.test.acc <= m.test_ci95[1]
    assert m.verdict == result.selection.verdict and m.sizes == result.selection.sizes
    finalists = {f.candidate: f for f in result.selection.finalists}
    assert [f["p_value"] for f in m.finalists] == [f.p_value for f in result.selection.finalists]
    if best.candidate in finalists:
        assert m.p_value == finalists[best.candidate].p_value


def test_chat_style_exports_the_messages_the_target_was_sent():
    result = optimize("capitalize_words", target="fake:rec", searcher="ape", rounds=0, candidates=2, dev_limit=6,
                      test_limit=4,
                      execution_style="chat")
    data = json.loads(export_run(result.run_id, "json"))
    assert data["style"] == "chat" and data["messages"] == json.loads(export_run(result.run_id, "chat"))
    sent = {c.messages for c in SEEN[0].calls if isinstance(c, GenerateRequest) and c.messages}
    for ex in load_task("capitalize_words").test[:4]:
        content = data["messages"][0]["content"].replace("{input}", ex.input)
        assert (Message(role="user", content=content),) in sent


def test_demos_run_exports_its_own_demonstrations_and_reproduces_from_the_command_line(tmp_path, capsys):
    folder = picky_task_dir(tmp_path)
    assert main(["optimize", str(folder), "--target", "fake:xpicky", "--searcher", "demos", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    best = result["best"]
    assert result["selection"]["verdict"] == "improved" and best["demos"] and best["test"]["acc"] == 1.0
    text = check_formats(result["run_id"])
    exported = export_prompt(result["run_id"])
    assert [d["id"] for d in exported.demonstrations] == best["demos"]
    assert [d["input"] for d in exported.demonstrations] == [d["input"] for d in best["demo_examples"]]
    assert exported.manifest.demonstrations.startswith(f"{len(best['demos'])}, its own: ")
    assert all(text.replace("{input}", w) in sent_prompts(SEEN[0]) for w in WORDS[44:])

    SEEN.clear()
    assert main(["eval", "--from-run", result["run_id"], "--no-cache", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["acc"] == best["test"]["acc"] and again["n"] == best["test"]["n"] and again["matches"]
    assert again["demos"] == best["demos"] and again["same_data"] is True and again["differing"] == []
    assert sent_prompts(SEEN[0]) == {text.replace("{input}", w) for w in WORDS[44:]}  # asked again, same prompts
    assert main(["eval", str(folder), "--from-run", result["run_id"]]) == 0
    assert "reproduced: the test score equals the run's exactly" in capsys.readouterr().out


def test_eval_from_run_takes_a_task_built_in_memory():
    ex = [Example(input=w, output=w[::-1], id=f"w{i}") for i, w in enumerate(WORDS)]
    task = Task(name="picky_mem", train=ex[:20], dev=ex[20:44], test=ex[44:], metric="exact_match",
                instructions=["Reverse the word."], shots=2)
    result = optimize(task, target="fake:xpicky", searcher="demos", seed=0)
    with pytest.raises(UsageError, match="task="):
        evaluate_run(result.run_id)  # the run's task cannot be loaded by name
    again = evaluate_run(result.run_id, task=task, cache=False)
    assert again.matches and again.acc == result.best.test.acc and again.demos == list(result.best.demos)


def test_eval_from_run_says_when_the_score_is_not_reproduced(capsys):
    result = optimize("topic", target="fake:upper", searcher="ape", rounds=0, candidates=2, dev_limit=6, test_limit=6)
    assert main(["eval", "--from-run", result.run_id]) == 0
    out = capsys.readouterr().out
    assert f"acc {result.best.test.acc:.3f}" in out and "reproduced" in out
    path = Path(result.run_dir) / "result.json"
    stored = json.loads(path.read_text())
    stored["best"]["test"]["acc"] = 0.5  # as if the run had scored otherwise
    stored["best"]["test_acc"][0] = 1.0 - stored["best"]["test_acc"][0]
    path.write_text(json.dumps(stored))
    assert main(["eval", "--from-run", str(result.run_dir)]) == 1
    out = capsys.readouterr().out
    assert "NOT reproduced" in out and "[0]" in out


def test_python_format_escapes_braces_and_keeps_the_input_slot():
    result = optimize("capitalize_words", target="fake:rec", searcher="ape", rounds=0, candidates=2, dev_limit=6,
                      test_limit=4)
    stored = json.loads((Path(result.run_dir) / "result.json").read_text())
    config = json.loads((Path(result.run_dir) / "config.json").read_text())
    stored["best"]["text"] = "Keep {braces}, {{doubled}} and the word {input} as they are."
    exported = shipped_prompt(stored, config)
    module: dict = {}
    exec(compile(exported.format_as("python"), "prompt.py", "exec"), module)
    demos = tuple(Example.model_validate(d) for d in stored["best"]["demo_examples"])
    wanted = ExecutionTemplate(demos=demos).context(stored["best"]["text"], Example(input="x}{y", output=""))
    assert module["render"]("x}{y") == exported.render("x}{y") == wanted
    assert any("{input}" in note for note in exported.notes)


def test_old_runs_export_with_their_demonstrations_drawn_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("APO_TASKS_DIR", str(V1.parent / "tasks_v1"))  # the task's data as the run was made on it
    run = tmp_path / "ape-fake-capitalize_words"
    shutil.copytree(V1 / run.name, run)
    check_formats(str(run))
    exported = export_prompt(str(run))
    assert len(exported.demonstrations) == 3 and any("drawn again" in n for n in exported.notes)
    assert main(["eval", "--from-run", str(run)]) == 0  # the drawn demonstrations give the recorded score
    assert "reproduced" in capsys.readouterr().out


@pytest.mark.parametrize("name, message", [
    ("no-such-run", "no run 'no-such-run'"),
    ("ape-fake-topic-partial", "shipped no prompt"),
    ("ape-fake-capitalize_words-killed", "apo resume"),
    ("autoprompt-splade-sst2", "cloze template"),
])
def test_runs_without_an_exportable_prompt_exit_2(tmp_path, capsys, name, message):
    if (V1 / name).exists():
        shutil.copytree(V1 / name, tmp_path / "runs" / name)
    assert main(["export", name]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert main(["eval", "--from-run", name]) == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_eval_options_exclude_each_other(capsys):
    for argv in (["eval", "topic", "--prompt", "x", "--from-run", "r"], ["eval", "topic"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    assert main(["eval", "--from-run", "r", "--model", "fake:upper", "--seed", "1"]) == 2
    assert "--model, --seed cannot be combined with --from-run" in " ".join(capsys.readouterr().err.split())
    assert main(["eval", "--prompt", "x"]) == 2
    assert "needs a TASK" in capsys.readouterr().err


def test_export_writes_the_file_and_the_manifest_to_stderr(tmp_path, capsys):
    result = optimize("topic", target="fake:upper", searcher="ape", rounds=0, candidates=2, dev_limit=6, test_limit=6)
    out = tmp_path / "prompt.txt"
    assert main(["export", result.run_id, "--out", str(out)]) == 0
    assert out.read_text() == export_run(result.run_id)
    err = capsys.readouterr().err
    assert f"# run_id: {result.run_id}" in err and "# task_sha256: " in err and str(out) in err
    assert main(["export", result.run_id]) == 0
    captured = capsys.readouterr()
    assert captured.out == export_run(result.run_id) and "# verdict: " in captured.err
    assert main(["export", result.run_id, "--format", "chat"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)[0]["role"] == "user" and "completion style" in captured.err


@pytest.mark.integration
def test_embedded_run_exports_and_reproduces_its_test_score(capsys):
    result = optimize("capitalize_words", target="embedded", searcher="ape", rounds=0, candidates=2, dev_limit=6,
                      confirm_limit=0,
                      test_limit=8, seed=0)
    assert result.best is not None and result.best.test.n == 8
    text = check_formats(result.run_id)
    assert text == ExecutionTemplate(demos=tuple(result.best.demo_examples)).context(
        result.best.text, Example(input="{input}", output=""))
    again = evaluate_run(result.run_id, cache=False)  # the model answers again, no cached answer
    assert again.matches and again.acc == result.best.test.acc and again.differing == []
    assert main(["eval", "--from-run", result.run_id]) == 0
    assert "reproduced" in capsys.readouterr().out
