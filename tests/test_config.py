"""One mapping from flat option names to the nested configuration, and job files."""

from __future__ import annotations

import json

import pytest

from optimizer import APEConfig, AutoPromptConfig, Budget, RunConfig, UsageError, optimize
from optimizer.config import load_job_file, migrate_config


def test_flat_names_reach_every_section():
    config = RunConfig.from_options("sum", searcher="ape", rounds=1, candidates=6, max_calls=50, max_seconds=30.0,
                                    race_min_examples=3,
                                    race_eta=3, dev_limit=10, seed=4, proposer="fake:upper")
    assert (config.task, config.seed, config.dev_limit, config.proposer) == ("sum", 4, 10, "fake:upper")
    assert (config.ape.rounds, config.ape.candidates) == (1, 6)
    assert config.budget == Budget(max_calls=50, max_seconds=30.0)
    assert (config.racing.min_examples, config.racing.eta) == (3, 3)


def test_autoprompt_flat_names_and_label_words_forms():
    config = RunConfig.from_options("sst2", searcher="autoprompt", cloze_template="{sentence} [T] [P] .",
                                    token_candidates=7, iterations=3, gradient_batch_size=8,
                                    label_words="positive=good,great;negative=bad")
    ap = config.autoprompt
    assert (ap.cloze_template, ap.token_candidates, ap.iterations, ap.gradient_batch_size) == (
        "{sentence} [T] [P] .", 7, 3, 8)
    assert ap.label_words == {"positive": ["good", "great"], "negative": ["bad"]}
    as_dict = RunConfig.from_options("sst2", searcher="autoprompt",
                                     label_words={"positive": "good", "negative": ["bad"]})
    assert as_dict.autoprompt.label_words == {"positive": ["good"], "negative": ["bad"]}
    assert config.ape == APEConfig()


def test_old_flat_names_still_work():
    ape = RunConfig.from_options("sum", dev_size=10, test_size=20, template="chat", batch_size=8)
    assert (ape.dev_limit, ape.test_limit, ape.execution_style, ape.score_batch_size) == (10, 20, "chat", 8)
    ap = RunConfig.from_options("sst2", searcher="autoprompt", template="[X] [T] [P]", candidates=5, batch_size=4)
    assert (ap.autoprompt.cloze_template, ap.autoprompt.token_candidates, ap.autoprompt.gradient_batch_size) == (
        "[X] [T] [P]", 5, 4)
    assert ap.execution_style == "completion" and ap.ape.candidates == 12
    with pytest.raises(UsageError, match="old name of 'dev_limit'"):
        RunConfig.from_options("sum", dev_size=10, dev_limit=5)


def test_sections_and_flat_names_combine():
    config = RunConfig.from_options("sum", ape=APEConfig(rounds=1, top_k=2), searcher="ape", candidates=4,
                                    budget={"max_calls": 9},
                                    max_tokens=1000, autoprompt=AutoPromptConfig(iterations=3))
    assert (config.ape.rounds, config.ape.top_k, config.ape.candidates) == (1, 2, 4)
    assert config.budget == Budget(max_calls=9, max_tokens=1000)
    assert config.autoprompt.iterations == 3  # a whole section of the other searcher is kept, as config.json holds
    assert RunConfig.from_options(**config.model_dump()) == config


def test_unknown_names_say_what_was_meant():
    with pytest.raises(UsageError) as exc:
        RunConfig.from_options("sum", rouds=1, budget_calls=5)
    text = str(exc.value)
    assert "'rouds' (did you mean 'rounds'?)" in text and "'budget_calls' (did you mean 'max_calls'" in text
    with pytest.raises(UsageError, match="ape.rouns: unknown field; did you mean 'rounds'"):
        RunConfig.from_options("sum", ape={"rouns": 1})


def test_options_of_the_other_searcher_are_refused():
    with pytest.raises(UsageError, match="iterations: AutoPrompt option, but the searcher is ape; choose"):
        RunConfig.from_options("sum", searcher="ape", iterations=3)
    with pytest.raises(UsageError, match=r"rounds: APE option, but the searcher is demos \(the default\); choose "
                                         r"searcher ape \(--searcher ape\)"):
        RunConfig.from_options("sum", rounds=2)
    with pytest.raises(UsageError, match="rounds, top_k: APE options, but the searcher is autoprompt"):
        RunConfig.from_options("sst2", searcher="autoprompt", rounds=1, top_k=2)


def test_bad_values_read_as_sentences():
    with pytest.raises(UsageError) as exc:
        RunConfig.from_options("sum", searcher="ape", rounds=-1, scoring="best", max_calls=0)
    text = str(exc.value)
    assert "rounds (ape.rounds): input should be greater than or equal to 0, got -1" in text
    assert "scoring: input should be 'accuracy' or 'logprob', got 'best'" in text
    assert "max_calls (budget.max_calls)" in text
    assert "pydantic" not in text and "http" not in text
    with pytest.raises(UsageError, match="no task given"):
        RunConfig.from_options()


def test_stored_configs_still_migrate():
    old = {"task": "sum", "template": "chat", "dev_size": 7, "ape": {"rounds": 1, "race_eta": 3},
           "autoprompt": {"template": "[X] [T] [P]", "candidates": 4}}
    config = RunConfig.model_validate(old)
    assert (config.execution_style, config.dev_limit, config.racing.eta) == ("chat", 7, 3)
    assert (config.autoprompt.cloze_template, config.autoprompt.token_candidates) == ("[X] [T] [P]", 4)
    assert migrate_config(old) != old  # a new dict; the stored one is not changed
    assert RunConfig.from_options(**old) == config


def test_job_file_flat_and_nested(tmp_path):
    flat = tmp_path / "job.yaml"
    flat.write_text("task: sum\nsearcher: ape\nrounds: 1\nmax-calls: 40\nrace_eta: 3\n")
    nested = tmp_path / "job.json"
    nested.write_text(json.dumps({"task": "sum", "searcher": "ape", "ape": {"rounds": 1}, "budget": {"max_calls": 40},
                                  "racing": {"eta": 3}}))
    assert RunConfig.from_file(flat) == RunConfig.from_file(nested)
    overridden = RunConfig.from_file(flat, task="antonyms", rounds=2, seed=5)
    got = (overridden.task, overridden.ape.rounds, overridden.seed, overridden.budget.max_calls)
    assert got == ("antonyms", 2, 5, 40)


def test_stored_run_config_is_a_job_file(tmp_path):
    stored = tmp_path / "config.json"
    stored.write_text(json.dumps({"config": RunConfig(task="sum", seed=3).model_dump(mode="json"), "run_id": "r",
                                  "provenance": {}}))
    assert RunConfig.from_file(stored) == RunConfig(task="sum", seed=3)


@pytest.mark.parametrize("name,text,message", [
    ("missing.yaml", None, "job file .*missing.yaml not found"),
    ("bad.yaml", "task: [sum\n", r"bad.yaml:2:1: not valid YAML"),
    ("bad.json", '{"task": "sum",}', r"bad.json:1:16: not valid JSON"),
    ("list.yaml", "- sum\n", "holds one mapping"),
    ("typo.yaml", "task: sum\nrouds: 1\n", r"typo.yaml: unknown option 'rouds' \(did you mean 'rounds'\?\)"),
    ("value.yaml", "task: sum\nsearcher: ape\nrounds: -1\n", r"rounds \(ape.rounds\).*got -1 \(job file .*value.yaml"),
])
def test_job_file_errors_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError, match=message):
        RunConfig.from_file(path)


def test_empty_job_file_needs_a_task(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    assert load_job_file(tmp_path / "empty.yaml") == {}
    assert RunConfig.from_file(tmp_path / "empty.yaml", task="sum").task == "sum"


def test_optimize_takes_a_job_file_or_a_config(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("task: capitalize_words\ntarget: fake:upper\nsearcher: ape\nrounds: 0\ncandidates: 2\n"
                   "dev_limit: 4\ntest_limit: 4\n")
    from_file = optimize(config=job, runs_dir=tmp_path / "runs", cache=False, seed=1)
    stored = json.loads((tmp_path / "runs" / from_file.run_id / "config.json").read_text())["config"]
    assert stored["target"] == "fake:upper" and stored["seed"] == 1 and stored["ape"]["candidates"] == 2
    whole = optimize(RunConfig.from_file(job, seed=1, cache=False), runs_dir=tmp_path / "runs")
    assert whole.best.text == from_file.best.text and whole.best.test == from_file.best.test
    with pytest.raises(UsageError, match="not both"):
        optimize(RunConfig(task="sum"), config=job)


def test_readme_job_file_is_valid(tmp_path):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"## Command line.*?```yaml\n(.*?)```", text, re.S).group(1)
    (tmp_path / "job.yaml").write_text(block)
    config = RunConfig.from_file(tmp_path / "job.yaml", seed=3)
    assert (config.task, config.ape.rounds, config.budget.max_calls, config.racing.eta, config.seed) == (
        "antonyms", 1, 2000, 3, 3)
