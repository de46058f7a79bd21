"""Tests of optimizer.tasks.task: every loader, the error messages, the bundled and benchmark tasks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from optimizer.errors import TaskError, UsageError
from optimizer.tasks.bundled import task_roots
from optimizer.tasks.induction import INDUCTION_METRICS
from optimizer.tasks.loaders import LOADERS, register_loader
from optimizer.tasks.metrics import METRICS
from optimizer.tasks.registry import TaskLoader, TaskRef
from optimizer.tasks.spec import TaskSpec
from optimizer.tasks.task import Task, list_tasks, load_task
from optimizer.types import Example

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
VALID = FIXTURES / "tasks_valid"
INVALID = FIXTURES / "tasks_invalid"
DATA_DIR = Path(os.environ.get("APO_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))
INDUCTION = DATA_DIR / "instruction_induction"
needs_induction = pytest.mark.skipif(
    not (INDUCTION / "induce").is_dir(), reason=f"instruction-induction data not found under {DATA_DIR}"
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


ROWS = [{"input": f"in{i}", "output": f"out{i}"} for i in range(4)]


def make_task_dir(root: Path, yaml_text: str, files: dict[str, str] | None = None) -> Path:
    write(root / "task.yaml", yaml_text)
    for name, text in (files or {}).items():
        write(root / name, text)
    return root


SPLIT_FILES = {"train.jsonl": jsonl(ROWS), "dev.jsonl": jsonl(ROWS), "test.jsonl": jsonl(ROWS)}
SPLITS_YAML = "data: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n"


# ----------------------------------------------------------------------------- YAML + JSONL


def test_yaml_folder_loads_every_field():
    task = load_task(VALID / "capitals")
    assert task.name == "capitals"
    assert task.metric == "normalized_match"
    assert task.shots == 2
    assert task.instructions == ["Write the capital city of the country.", "Answer with a city."]
    assert task.source == "hand-written test fixture"
    assert [len(task.train), len(task.dev), len(task.test)] == [4, 2, 3]  # the blank line is skipped
    assert task.train[0] == Example(input="France", output="Paris", id="0")
    assert task.train[3].id == "peru"
    assert task.test[0].answers == ("Sucre", "La Paz")
    # Not given in the YAML: derived from the longest output ("Sucre", 1 word -> 7).
    assert task.max_output_tokens == 7
    assert task.split("dev") is task.dev
    assert task.scorer()("the paris", ["Paris"]) == 1.0


def test_yaml_file_path_and_name_lookup_agree(monkeypatch):
    by_folder = load_task(VALID / "capitals")
    assert load_task(VALID / "capitals" / "task.yaml") == by_folder
    assert load_task(str(VALID / "capitals")) == by_folder
    monkeypatch.setenv("APO_TASKS_DIR", str(VALID))
    assert task_roots()[0] == VALID.resolve()
    assert load_task("capitals") == by_folder


def test_csv_and_tsv_with_renamed_columns_and_carved_dev():
    task = load_task(VALID / "reviews_csv", dev_from_train=2)
    assert task.name == "reviews"
    assert task.metric == "label" and task.labels == ["positive", "negative"]
    assert [len(task.train), len(task.dev), len(task.test)] == [6, 2, 3]
    everything = {ex.input: ex for ex in task.train + task.dev}
    assert everything["Loved it, would watch again"].alternatives == ("good", "great")
    assert everything["Dull"].alternatives == ()
    assert task.test[0] == Example(input="Wonderful", output="positive", id="0")
    # Dev is carved from train with a seeded shuffle: reproducible, and seed-dependent.
    assert load_task(VALID / "reviews_csv", dev_from_train=2) == task
    default = load_task(VALID / "reviews_csv")
    assert len(default.dev) == 4  # at most half of train
    scorer = task.scorer()
    assert scorer("Negative!", ["negative"]) == 1.0


def test_single_tsv_file_is_split_60_20_20():
    task = load_task(VALID / "single.tsv")
    assert task.name == "single"
    assert [len(task.train), len(task.dev), len(task.test)] == [6, 2, 2]
    all_inputs = sorted(int(ex.input) for ex in task.train + task.dev + task.test)
    assert all_inputs == list(range(1, 11))
    assert all(ex.output == str(2 * int(ex.input)) for ex in task.train)
    assert load_task(VALID / "single.tsv", seed=0) == task
    others = [load_task(VALID / "single.tsv", seed=s) for s in range(1, 6)]
    assert any(o.test != task.test for o in others)


def test_json_list_file():
    task = load_task(VALID / "items.json")
    assert task.name == "items"
    assert len(task.train) + len(task.dev) + len(task.test) == 10
    assert task.shots == 0


def test_single_instruction_induction_shaped_file():
    task = load_task(VALID / "plural_style.json")
    assert task.name == "plural_style"
    assert task.metric == "normalized_match" and task.shots == 3
    assert {ex.input for ex in task.train + task.dev + task.test} == {f"cat{i}" for i in range(1, 11)}


def test_options_override_task_fields():
    task = load_task(VALID / "capitals", metric="f1", shots=3, max_output_tokens=3)
    assert (task.metric, task.shots, task.max_output_tokens) == ("f1", 3, 3)
    with pytest.raises(TaskError, match="shots.*only 4 examples"):  # refused, not capped
        load_task(VALID / "capitals", shots=5)
    with pytest.raises(UsageError, match="unknown task option"):
        load_task(VALID / "capitals", bogus=1)
    with pytest.raises(TaskError, match="metric"):
        load_task(VALID / "capitals", metric="bleu")
    with pytest.raises(UsageError, match="dev_from_train"):
        load_task(VALID / "capitals", dev_from_train=0)


def test_task_model_validates_itself():
    ex = [Example(input="a", output="b")]
    with pytest.raises(ValueError, match="unknown metric"):
        Task(name="t", train=ex, dev=ex, test=ex, metric="nope")
    with pytest.raises(ValueError, match="labels"):
        Task(name="t", train=ex, dev=ex, test=ex, metric="label")
    with pytest.raises(UsageError, match="split"):
        Task(name="t", train=ex, dev=ex, test=ex).split("validation")  # type: ignore[arg-type]
    for name, info in TaskSpec.model_fields.items():
        assert info.description, f"TaskSpec.{name} has no docstring"
    for name, info in Task.model_fields.items():
        assert info.description, f"Task.{name} has no docstring"


# ----------------------------------------------------------------------------- malformed input


def test_unknown_yaml_field_names_file_field_and_allowed_keys():
    with pytest.raises(TaskError) as info:
        load_task(INVALID / "typo_field")
    message = str(info.value)
    assert "typo_field/task.yaml" in message and "`metrc`" in message
    assert "allowed:" in message and "metric" in message


def test_bad_json_line_names_file_and_line():
    with pytest.raises(TaskError, match=r"bad_json_line/train\.jsonl:3: not valid JSON"):
        load_task(INVALID / "bad_json_line")


@pytest.mark.parametrize(
    ("yaml_text", "files", "expected"),
    [
        ("name: t\ndata: {train: train.jsonl}\n", {}, r"field `data`: missing `data.test`"),
        ("name: t\ndata: {train: [a, b], test: t.jsonl}\n", {}, r"field `data.train`: .*string"),
        ("name: t\ndata: {train: a, test: b, extra: c}\n", {}, r"field `data.extra`.*allowed: train, dev, test"),
        ("description: no name\n" + SPLITS_YAML, {}, r"field `name`: Field required; fix: add `name`"),
        ("name: t\nshots: three\n" + SPLITS_YAML, SPLIT_FILES, r"field `shots`"),
        ("name: t\nshots: -1\n" + SPLITS_YAML, SPLIT_FILES, r"field `shots`.*greater than or equal"),
        ("name: t\nmetric: bleu\n" + SPLITS_YAML, SPLIT_FILES,
         r"field `metric`: unknown metric 'bleu'; fix: use one of .*exact_match"),
        ("name: t\nmetric: label\n" + SPLITS_YAML, SPLIT_FILES, r"needs `labels`"),
        ("name: t\n" + SPLITS_YAML, {"train.jsonl": jsonl(ROWS), "test.jsonl": jsonl(ROWS)},
         r"field `data.dev`: file not found"),
        ("name: t\n" + SPLITS_YAML, {**SPLIT_FILES, "dev.jsonl": ""}, r"dev\.jsonl \(field `data.dev`\): no examples"),
        ("name: t\ndata: {train: a.txt, test: a.txt}\n", {"a.txt": "x"}, r"a\.txt \(field `data.train`\): unsupported"),
        ("name: t\n  bad: [indent\n", {}, r"task\.yaml:\d+: not valid YAML"),
        ("- just\n- a list\n", {}, r"task\.yaml: expected a mapping"),
    ],
)
def test_malformed_task_yaml(tmp_path, yaml_text, files, expected):
    folder = make_task_dir(tmp_path / "t", yaml_text, files)
    with pytest.raises(TaskError, match=expected) as info:
        load_task(folder)
    assert str(folder) in str(info.value)
    assert isinstance(info.value, UsageError)  # the CLI maps it to exit code 2


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("train.jsonl", jsonl(ROWS[:1]) + '{"input": "x"}\n', r"train\.jsonl:2: missing \"output\""),
        ("train.jsonl", jsonl(ROWS[:1]) + '{"output": "x"}\n', r"train\.jsonl:2: missing \"input\""),
        ("train.jsonl", '["input", "output"]\n', r"train\.jsonl:1: expected an object"),
        ("train.jsonl", '{"input": {"a": 1}, "output": "x"}\n', r"train\.jsonl:1: field \"input\" must be a string"),
        ("train.jsonl", '{"input": "a", "output": "b", "alternatives": 3}\n', r"train\.jsonl:1: \"alternatives\""),
        ("train.json", '{"items": []}', r"train\.json: expected a list"),
        ("train.json", '[{"input": "a", "output": "b"}, {"input": "c"}]', r"train\.json: item 1: missing \"output\""),
        ("train.json", "[\n{oops}\n]", r"train\.json:2: not valid JSON"),
        ("train.csv", "question,output\nq,a\n", r"train\.csv:1: no column \"input\" \(columns: question, output\)"),
        ("train.csv", "input,output\na,b\nc\n", r"train\.csv:3: missing \"output\""),
        ("train.tsv", "", r"train\.tsv:1: no column \"input\" \(columns: none\)"),
    ],
)
def test_malformed_data_files_name_file_and_line(tmp_path, name, text, expected):
    folder = make_task_dir(tmp_path / "t", f"name: t\ndata: {{train: {name}, test: test.jsonl}}\n", {name: text})
    write(folder / "test.jsonl", jsonl(ROWS))
    with pytest.raises(TaskError, match=expected):
        load_task(folder)


def test_single_data_file_errors(tmp_path):
    with pytest.raises(TaskError, match=r"tiny\.jsonl: needs at least 3 examples"):
        load_task(write(tmp_path / "tiny.jsonl", jsonl(ROWS[:2])))
    with pytest.raises(TaskError, match=r"notes\.txt.*unsupported file type"):
        load_task(write(tmp_path / "notes.txt", "x"))
    with pytest.raises(TaskError, match="folder has no task.yaml"):
        load_task(tmp_path)
    with pytest.raises(TaskError, match="no such file or folder"):
        load_task(tmp_path / "missing.jsonl")
    with pytest.raises(TaskError, match="no such file or folder"):
        load_task("no/such/folder")


def test_unknown_name_says_where_it_looked_and_what_exists(monkeypatch, tmp_path):
    monkeypatch.setenv("APO_TASKS_DIR", str(VALID))
    monkeypatch.delenv("APO_DATA_DIR", raising=False)
    with pytest.raises(TaskError) as info:
        load_task("no_such_task", data_dir=tmp_path)
    message = str(info.value)
    assert "no task named 'no_such_task'" in message
    assert f"{VALID.resolve()}/no_such_task/task.yaml" in message
    assert f"{tmp_path}/no_such_task/task.yaml" in message
    assert "capitals" in message and "reviews_csv" in message


# ----------------------------------------------------------------------------- instruction induction


def write_induction(root: Path, name: str, induce: dict, execute: dict, annotations=None) -> None:
    write(root / "induce" / f"{name}.json", json.dumps({"metadata": {}, "examples": induce}))
    write(root / "execute" / f"{name}.json", json.dumps({"metadata": {}, "examples": execute}))
    if annotations is not None:
        write(root / "annotations" / f"{name}.json", json.dumps(annotations))


def test_induction_shapes_without_input(tmp_path):
    pairs = {str(i): {"cause": f"c{i}.", "effect": f"e{i}."} for i in range(1, 9)}
    write_induction(tmp_path, "cause_and_effect", pairs, pairs)
    task = load_task("cause_and_effect", data_dir=tmp_path, dev_from_train=2)
    ex = task.test[0]
    assert ex.output == "c1." and ex.input in ("Sentence 1: c1. Sentence 2: e1.", "Sentence 1: e1. Sentence 2: c1.")
    assert task.metric == "normalized_match"
    concepts = {
        str(i): {"concept": f"k{i}", "items": ["a", "b", "c"], "all_common_concepts": [f"k{i}", f"alt{i}"]}
        for i in range(1, 9)
    }
    write_induction(tmp_path, "common_concept", concepts, concepts)
    task = load_task("common_concept", data_dir=tmp_path)
    assert task.metric == "f1"
    assert task.test[0] == Example(input="a, b, c", output="k1", alternatives=("k1", "alt1"), id="1")
    assert task.test[0].answers == ("k1", "alt1")


def test_induction_errors(tmp_path):
    write(tmp_path / "induce" / "lonely.json", json.dumps({"examples": {"1": {"input": "a", "output": "b"}}}))
    with pytest.raises(TaskError, match=r"execute/lonely\.json: file not found"):
        load_task("lonely", data_dir=tmp_path)
    good = {str(i): {"input": f"a{i}", "output": f"b{i}"} for i in range(1, 5)}
    write_induction(tmp_path, "broken", {**good, "5": {"input": "x", "answer": "y"}}, good)
    with pytest.raises(TaskError, match=r"induce/broken\.json: examples\.5: missing \"output\""):
        load_task("broken", data_dir=tmp_path)
    write_induction(tmp_path, "notes", good, good, annotations={"annotations": "not a list"})
    with pytest.raises(TaskError, match=r"annotations/notes\.json: field `annotations`"):
        load_task("notes", data_dir=tmp_path)
    write_induction(tmp_path, "listy", good, {"examples": []}, annotations=None)
    write(tmp_path / "execute" / "listy.json", json.dumps({"examples": [1, 2]}))
    with pytest.raises(TaskError, match=r"execute/listy\.json: field \"examples\""):
        load_task("listy", data_dir=tmp_path)


@needs_induction
def test_all_instruction_induction_tasks_load():
    names = sorted(p.stem for p in (INDUCTION / "induce").glob("*.json"))
    assert len(names) == 12
    for name in names:
        task = load_task(name, data_dir=DATA_DIR)
        small = name == "informal_to_formal"  # 15 induce and 15 execute examples
        assert len(task.test) == (15 if small else 100), name
        assert len(task.dev) == (7 if small else 200), name
        assert 0 < len(task.train) <= 1000, name
        assert {ex.id for ex in task.dev}.isdisjoint(ex.id for ex in task.train), name
        assert task.metric == INDUCTION_METRICS.get(name, "normalized_match"), name
        assert task.metric in METRICS
        assert task.shots == 3
        assert 7 <= task.max_output_tokens <= 256
        assert task.instructions and all(isinstance(i, str) for i in task.instructions), name
        assert "instruction induction" in task.source


@needs_induction
def test_instruction_induction_details():
    translation = load_task("translation_en-es", data_dir=DATA_DIR)
    first = translation.test[0]
    assert first.input == "place" and first.output == "lugar"
    assert {"asiento", "sitio", "lugar"} <= set(first.answers)
    assert translation.instructions[0] == "Translate to Spanish"
    assert load_task("synonyms", data_dir=DATA_DIR).metric == "contains"
    assert load_task("informal_to_formal", data_dir=DATA_DIR).metric == "f1"
    # Metadata keys such as "x"/"y" of sum are ignored.
    total = load_task("sum", data_dir=DATA_DIR)
    assert total.test[0] == Example(input="0 47", output="47", id="1")
    # The data dir may also be the instruction_induction folder itself.
    assert load_task("sum", data_dir=INDUCTION) == total
    # Seeded: the same seed gives the same sample, another seed another one.
    assert load_task("sum", data_dir=DATA_DIR, seed=0) == total
    assert load_task("sum", data_dir=DATA_DIR, seed=1).dev != total.dev
    assert len(load_task("sum", data_dir=DATA_DIR, dev_from_train=10).dev) == 10


@needs_induction
def test_data_dir_from_environment_and_single_induce_file(monkeypatch):
    monkeypatch.setenv("APO_DATA_DIR", str(DATA_DIR))
    assert load_task("antonyms").test == load_task("antonyms", data_dir=DATA_DIR).test
    task = load_task(INDUCTION / "execute" / "synonyms.json")
    assert task.name == "synonyms" and task.metric == "contains"
    assert len(task.train) + len(task.dev) + len(task.test) == 100


# ----------------------------------------------------------------------------- datasets


def test_datasets_csv_single_split(tmp_path):
    rows = "".join(f"q{i},a{i}\n" for i in range(20))
    csv_file = write(tmp_path / "qa.csv", "question,answer\n" + rows)
    task = load_task(
        "datasets:csv", data_files=str(csv_file), input_field="question", output_field="answer",
        cache_dir=str(tmp_path / "cache"), shots=2,
    )
    assert task.name == "qa" and task.shots == 2
    assert [len(task.train), len(task.dev), len(task.test)] == [12, 4, 4]
    assert all(ex.output == "a" + ex.input[1:] for ex in task.train)
    assert task.source.startswith("datasets:csv")


def test_datasets_json_splits_and_carved_dev(tmp_path):
    train = write(tmp_path / "train.jsonl", jsonl([{"input": f"i{i}", "output": f"o{i}"} for i in range(10)]))
    test = write(tmp_path / "test.jsonl", jsonl(ROWS))
    files = {"train": str(train), "test": str(test)}
    task = load_task("hf:json", data_files=files, cache_dir=str(tmp_path / "cache"), dev_from_train=3)
    assert [len(task.train), len(task.dev), len(task.test)] == [7, 3, 4]
    assert task.test[0] == Example(input="in0", output="out0", id="0")
    swapped = load_task(
        "datasets:json", data_files=files, cache_dir=str(tmp_path / "cache"),
        splits={"train": "test", "dev": "train", "test": "train"},
    )
    assert len(swapped.train) == 4 and len(swapped.dev) == 10


def test_datasets_class_labels_become_the_label_set(tmp_path):
    datasets = pytest.importorskip("datasets")
    csv_file = write(tmp_path / "sst.csv", "sentence,label\n" + "".join(f"s{i},{i % 2}\n" for i in range(10)))
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["negative", "positive"])}
    )
    task = load_task(
        "datasets:csv", data_files=str(csv_file), features=features, input_field="sentence",
        output_field="label", cache_dir=str(tmp_path / "cache"),
    )
    assert task.labels == ["negative", "positive"] and task.metric == "label"
    assert {ex.output for ex in task.train} == {"negative", "positive"}


def test_datasets_errors(tmp_path):
    csv_file = write(tmp_path / "qa.csv", "question,answer\nq,a\nr,b\ns,c\n")
    cache = str(tmp_path / "cache")
    with pytest.raises(TaskError, match=r"no column 'input' \(columns: question, answer\)"):
        load_task("datasets:csv", data_files=str(csv_file), cache_dir=cache)
    with pytest.raises(TaskError, match="load_dataset"):
        load_task("datasets:csv", data_files=str(tmp_path / "absent.csv"), cache_dir=cache)
    with pytest.raises(TaskError, match="option `splits`"):
        load_task(
            "datasets:csv", data_files=str(csv_file), cache_dir=cache, input_field="question",
            output_field="answer", splits={"train": "validation"},
        )
    with pytest.raises(UsageError, match="name a dataset"):
        load_task("hf:")


# ----------------------------------------------------------------------------- bundled tasks


BUNDLED = sorted((REPO / "tasks").glob("*/task.yaml"))


@pytest.mark.skipif(not BUNDLED, reason="no bundled tasks under tasks/ yet")
@pytest.mark.parametrize("task_yaml", BUNDLED, ids=[p.parent.name for p in BUNDLED])
def test_bundled_task_loads(task_yaml):
    by_name = load_task(task_yaml.parent.name)
    assert by_name == load_task(task_yaml.parent)
    for split in ("train", "dev", "test"):
        assert by_name.split(split), f"{task_yaml}: empty {split} split"
    assert len(by_name.test) >= 30
    assert by_name.metric in METRICS
    by_name.scorer()  # the metric resolves (labels present for 'label')


def test_list_tasks(monkeypatch):
    monkeypatch.setenv("APO_TASKS_DIR", os.pathsep.join([str(VALID), str(INVALID)]))
    monkeypatch.delenv("APO_DATA_DIR", raising=False)
    infos = {info.name: info for info in list_tasks()}
    assert infos["capitals"].sizes == {"train": 4, "dev": 2, "test": 3}
    assert infos["capitals"].kind == "yaml" and infos["capitals"].metric == "normalized_match"
    assert infos["typo_field"].error and not infos["typo_field"].sizes
    assert "bad_json_line/train.jsonl:3" in infos["bad_json_line"].error
    for task_yaml in BUNDLED:
        assert infos[task_yaml.parent.name].error == ""
    if (INDUCTION / "induce").is_dir():
        with_data = {info.name: info for info in list_tasks(DATA_DIR)}
        assert with_data["sum"].kind == "instruction_induction"
        assert with_data["sum"].sizes == {"train": 1000, "dev": 50, "test": 100}
        assert with_data["informal_to_formal"].metric == "f1"


def test_list_tasks_sees_cloze_tasks_in_a_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("APO_DATA_DIR", raising=False)
    sentences = [f"s{i}\t{i % 2}\n" for i in range(400)]
    write(tmp_path / "sst2" / "train.tsv", "sentence\tlabel\n" + "".join(sentences))
    write(tmp_path / "sst2" / "dev.tsv", "sentence\tlabel\n" + "".join(sentences[:40]))
    lama = tmp_path / "lama_trex"
    for relation in ("P17", "P101"):
        for folder, subject in (("trex_lms_vocab", "s"), ("TREx_train", "t")):
            facts = [{"sub_label": f"{subject}{i}", "obj_label": f"o{i}"} for i in range(20)]
            write(lama / folder / f"{relation}.jsonl", jsonl(facts))
    write(lama / "relation_metainfo" / "LAMA_relations.jsonl",
          jsonl([{"relation": "P17", "template": "[X] is in [Y] ."}]))
    infos = {info.name: info for info in list_tasks(tmp_path)}
    assert (infos["sst2"].kind, infos["sst2"].sizes) == ("sst2", {"train": 200, "dev": 200, "test": 40})
    assert [n for n, i in infos.items() if i.kind == "lama"] == ["lama:P17", "lama:P101"]  # by relation number
    assert infos["lama:P17"].error == ""
    assert infos["lama:P17"].sizes == {"train": 16, "dev": 4, "test": 20}
    assert "no template for P101" in infos["lama:P101"].error
    assert infos["lama:P17"].path == str(lama / "trex_lms_vocab" / "P17.jsonl")
    assert load_task("lama:P17", data_dir=tmp_path).name == "lama-P17"
    # The folder of one benchmark works as the data dir too.
    assert [i.name for i in list_tasks(tmp_path / "sst2") if i.kind == "sst2"] == ["sst2"]


@pytest.mark.skipif(not (DATA_DIR / "lama_trex").is_dir() or not (INDUCTION / "induce").is_dir(),
                    reason=f"benchmark data not found under {DATA_DIR}")
def test_list_tasks_of_the_benchmark_data_lists_every_kind(monkeypatch):
    monkeypatch.delenv("APO_DATA_DIR", raising=False)
    infos = list_tasks(DATA_DIR)
    by_kind: dict[str, list[str]] = {}
    for info in infos:
        assert not info.error, info
        by_kind.setdefault(info.kind, []).append(info.name)
    assert sorted(by_kind["instruction_induction"]) == sorted(p.stem for p in (INDUCTION / "induce").glob("*.json"))
    assert by_kind["sst2"] == ["sst2"]
    relations = {p.stem for p in (DATA_DIR / "lama_trex" / "trex_lms_vocab").glob("P*.jsonl")}
    assert {name.removeprefix("lama:") for name in by_kind["lama"]} == relations
    assert {p.parent.name for p in BUNDLED} <= set(by_kind["yaml"])
    # The instruction_induction folder itself lists the same induction tasks as its parent.
    induction = [i.name for i in infos if i.kind in ("yaml", "instruction_induction")]
    assert [i.name for i in list_tasks(INDUCTION)] == induction


def test_a_registered_kind_of_task_loads_and_lists(monkeypatch, tmp_path):
    monkeypatch.setattr(LOADERS, "_loaders", dict(LOADERS._loaders))  # registrations end with the test
    rows = [Example(input=f"w{i}", output=f"w{i}"[::-1]) for i in range(6)]

    def find(spec, data_dir):
        return TaskRef("reverse", spec, "built in") if spec == "reverse_word" else None

    def load(ref, request):
        return dict(name=ref.name, train=rows[:2], dev=rows[2:4], test=rows[4:], source=f"seed {request.seed}")

    register_loader(TaskLoader("reverse", find, load, names=lambda data_dir: [find("reverse_word", data_dir)]))
    assert LOADERS.kinds()[-1] == "reverse"
    task = load_task("reverse_word", seed=3, shots=1)
    assert (task.name, task.shots, task.source, task.test[0].output) == ("reverse_word", 1, "seed 3", "4w")
    info = {i.name: i for i in list_tasks(tmp_path)}["reverse_word"]
    assert (info.kind, info.sizes) == ("reverse", {"train": 2, "dev": 2, "test": 2})
    with pytest.raises(UsageError, match="unknown task option"):
        load_task("reverse_word", input_field="x")


def test_long_gold_outputs_get_room_to_be_answered_and_a_limit_too_small_is_said(tmp_path, capsys):
    from optimizer.config import RunConfig
    from optimizer.run.preflight import check_job

    def task_file(words: int, name: str) -> Path:
        path = tmp_path / f"{name}.jsonl"
        rows = [{"input": str(i), "output": " ".join(["word"] * words)} for i in range(20)]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return path

    sixty = load_task(str(task_file(60, "sixty")))
    assert sixty.max_output_tokens == 184  # 3 a word plus 4: not cut at 64 as before
    check_job(RunConfig.from_options("sixty", target="fake:echo"), sixty)
    assert "cannot be matched" not in capsys.readouterr().err
    long = load_task(str(task_file(200, "long")))
    assert long.max_output_tokens == 256  # the most a task gets without saying so
    check_job(RunConfig.from_options("long", target="fake:echo"), long)
    assert "up to 200 words" in (err := capsys.readouterr().err) and "max_output_tokens: 604" in err
