"""apo compare: every method on one task and model at several training sizes within one budget, as a sweep whose
leaderboard has a row per (method, size) and the learning curves; on the fake model (instruction methods) and on
a tiny Llama built from a config (the trained methods through peft)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optimizer import compare, learning_curves
from optimizer.cli.main import main
from optimizer.errors import UsageError
from optimizer.service.compare import compare_methods, compare_spec

TRAINED = ["prompt-tuning", "prefix-tuning", "p-tuning", "lora"]


def test_the_methods_follow_the_model_and_the_task():
    assert compare_methods("fake:upper", None) == ["baseline", "demos"]  # no weights: no gradient searchers
    assert compare_methods("openai:gpt-4o-mini", ["a", "b"]) == ["baseline", "demos"]
    assert compare_methods("embedded", None) == ["baseline", "demos", *TRAINED]
    assert compare_methods("embedded", ["negative", "positive"]) == ["baseline", "demos", "autoprompt", *TRAINED]
    assert compare_methods("embedded:splade-tiny", ["negative", "positive"]) == ["baseline", "autoprompt", *TRAINED]


def test_the_plan_shares_one_budget_and_scopes_options_to_their_searchers():
    spec = compare_spec("capitalize_words", target="fake:upper", methods=["baseline", "ape", "lora"],
                        sizes=[8, 32, 128, None], seeds=[0, 1], max_calls=12_000,
                        settings={"rounds": 0, "steps": 40, "test_limit": 20, "soft": {"lora_rank": 4},
                                  "label_words": {"a": ["x"], "b": ["y"]}})
    assert spec["grid"] == {"train_limit": [8, 32, None]}  # 128 and all are the same 40 examples
    assert spec["searchers"] == ["baseline", "ape", "lora"] and spec["seeds"] == [0, 1]
    words = {"a": ["x"], "b": ["y"]}  # a mapping-valued option goes to its searchers' sections only
    assert spec["settings"] == {"ape": {"rounds": 0}, "soft": {"lora_rank": 4, "steps": 40},
                                "autoprompt": {"label_words": words}, "test_limit": 20,
                                "max_calls": 12_000 // 18}  # 3 methods x 3 sizes x 2 seeds
    for bad, message in (({"sizes": [0]}, "--sizes: give training sizes of 1 or more"),
                         ({"methods": ["apex"]}, "--methods: unknown searcher 'apex'"),
                         ({"max_calls": 3}, "--max-calls 3: the comparison has 4 runs")):
        with pytest.raises(UsageError, match=message):
            compare_spec("capitalize_words", target="fake:upper", **{"sizes": [8, None], **bad})


def test_a_comparison_on_the_fake_model_ends_with_its_learning_curves(tmp_path):
    runs = tmp_path / "runs"
    kw = {"target": "fake:upper", "sizes": [4, 12, None], "max_calls": 6_000, "settings": {"sets": 4},
          "runs_dir": runs}
    result = compare("capitalize_words", **kw)
    assert [o.state for o in result.outcomes] == ["complete"] * 6
    configs = [json.loads((runs / j.run_id / "config.json").read_text())["config"] for j in result.jobs]
    assert {(c["searcher"], c["train_limit"]) for c in configs} == {
        (m, n) for m in ("baseline", "demos") for n in (4, 12, None)}
    assert {c["budget"]["max_calls"] for c in configs} == {1_000}  # the comparison's budget, shared evenly
    assert sum(json.loads((runs / j.run_id / "result.json").read_text())["calls"] for j in result.jobs) <= 6_000
    (curve,) = learning_curves(result.leaderboard)
    assert curve.sizes == [4, 12, 40] and sorted(curve.lines) == ["baseline", "demos"]
    assert all(len(points) == 3 for points in curve.lines.values())
    html = Path(str(result.report)).read_text()
    assert 'id="curve-1"' in html and "Learning curve of capitalize_words on fake:upper" in html
    assert (runs / "compare" / "compare-capitalize_words-fake-upper.json").exists()
    again = compare("capitalize_words", **kw)  # the same comparison continues: nothing runs again
    assert again.sweep_id == result.sweep_id and [o.attempts for o in again.outcomes] == [0] * 6


def test_the_command_line(tmp_path, capsys):
    args = ["--runs-dir", str(tmp_path), "compare", "capitalize_words", "--target", "fake:upper"]
    assert main([*args, "--sizes", "8,lots"]) == 2
    assert "--sizes 8,lots: 'lots' is not a training size" in capsys.readouterr().err
    assert main([*args, "--seeds", "0,x"]) == 2
    assert main([*args, "--set", "rounds"]) == 2
    assert "--set rounds: give KEY=VALUE" in capsys.readouterr().err
    assert main([*args, "--sizes", "5,all", "--methods", "baseline", "--set", "test_limit=10"]) == 0
    printed = capsys.readouterr().out
    assert "| searcher | 5 | 40 |" in printed and "| baseline |" in printed


@pytest.mark.slow
def test_soft_prompts_and_lora_against_prompting_on_a_tiny_llama(tmp_path):
    pytest.importorskip("peft")
    from test_hf_backend import _save_tiny

    model = _save_tiny(tmp_path / "tiny", chat=False)
    task = tmp_path / "planted"
    task.mkdir()
    words = ["fox", "dog", "cat", "house", "time", "model", "small", "big", "hot", "cold"]
    rows = [{"input": f"{a} {b}", "output": "chat"} for a in words for b in words]
    for split, part in (("train", rows[:40]), ("dev", rows[40:70]), ("test", rows[70:100])):
        (task / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    (task / "task.yaml").write_text("name: planted\nmetric: exact_match\nshots: 0\ninstructions: [Say chat.]\n"
                                    "data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n")
    result = compare(str(task), target=f"hf:{model}", methods=["baseline", "prompt-tuning", "lora"], sizes=[8, None],
                     settings={"steps": 40, "eval_every": 20, "learning_rate": 0.05, "cache": False},
                     runs_dir=tmp_path / "runs")
    assert [o.state for o in result.outcomes] == ["complete"] * 6
    (curve,) = learning_curves(result.leaderboard)
    assert curve.sizes == [8, 40] and sorted(curve.lines) == ["baseline", "lora", "prompt-tuning"]
    rows = {(r.searcher, r.best.train_examples): r.best for r in result.leaderboard.rows}
    assert rows[("baseline", 8)].trainable_params == 0
    assert any(b.trainable_params > 0 for (s, _), b in rows.items() if s != "baseline")  # an adapter shipped
