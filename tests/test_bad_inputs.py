"""Every bad input gets a clear message and leaves nothing behind.

One table of bad inputs across task files, instruction-induction files, ``datasets:`` specs, options, model
strings, resume, runs, the leaderboard, export, the cache, price files and the filesystem. For each: the
documented exit code (2 for bad input), no traceback, a message that names what was wrong, where, and how to
fix it (the ``says`` fragments), and no new file under the runs or cache folders.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from optimizer.cli.main import main
from optimizer.models.cache import default_cache_path as real_cache_path

REPO = Path(__file__).resolve().parents[1]
TOPIC = REPO / "tasks" / "topic"


@dataclass
class Case:
    id: str
    argv: list[str]
    says: list[str]
    code: int = 2
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _task(d: Path, yaml_text: str, rows: dict[str, list[dict]] | None = None, folder: str = "t") -> None:
    """A task folder ``d/folder`` with ``task.yaml`` and train/dev/test JSONL files (4/4/4 rows by default)."""
    root = d / folder
    root.mkdir(parents=True, exist_ok=True)
    (root / "task.yaml").write_text(yaml_text)
    rows = rows if rows is not None else {}
    for split in ("train", "dev", "test"):
        data = rows.get(split, [{"input": f"x{i}", "output": f"y{i}"} for i in range(4)])
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in data))


GOOD_YAML = "name: t\ndata: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n"


def _yaml(text: str, rows: dict | None = None, folder: str = "t") -> Callable[[Path], None]:
    return lambda d: _task(d, text, rows, folder)


def _file(name: str, content: str | bytes) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        path = d / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return make


def _induction(examples: object, name: str = "mytask") -> Callable[[Path], None]:
    def make(d: Path) -> None:
        for sub in ("induce", "execute"):
            (d / "ii" / sub).mkdir(parents=True, exist_ok=True)
        text = examples if isinstance(examples, str) else json.dumps({"metadata": {}, "examples": examples})
        (d / "ii" / "induce" / f"{name}.json").write_text(text)
        (d / "ii" / "execute" / f"{name}.json").write_text(text)
    return make


def _finished_run(d: Path) -> None:
    """A finished fake run under d/runs (made before the snapshot, so it does not count as new)."""
    env = {"APO_RUNS_DIR": str(d / "runs"), "APO_CACHE_DIR": str(d / "cache")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["optimize", "topic", "--target", "fake:upper", "--searcher", "ape", "--rounds", "1",
                     "--json"]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def _damaged(file: str, content: str) -> Callable[[Path], None]:
    def make(d: Path) -> None:
        _finished_run(d)
        (run,) = (d / "runs").iterdir()
        (run / file).write_text(content)
        (d / "run_id").write_text(run.name)
    return make


FAKE = ["--target", "fake:upper"]
T = ["optimize", "{d}/t", *FAKE]

CASES = [
    # --- task files
    Case("task-missing", ["optimize", "no_such_task", *FAKE], ["no task named 'no_such_task'", "Available"]),
    Case("task-yaml-syntax", T, ["task.yaml", "not valid YAML"], setup=_yaml("name: t\ndata: [unclosed\n")),
    Case("task-yaml-list", T, ["task.yaml", "expected a mapping"], setup=_yaml("- a\n- b\n")),
    Case("task-yaml-duplicate-key", T, ["task.yaml", "'name' is given twice", "keep one"],
         setup=_yaml("name: t\nname: u\ndata: {train: train.jsonl, dev: dev.jsonl, test: test.jsonl}\n")),
    Case("task-unknown-field", T, ["task.yaml", "metrc"], setup=_yaml(GOOD_YAML + "metrc: f1\n")),
    Case("task-unknown-metric", T, ["task.yaml", "bleu", "exact_match"], setup=_yaml(GOOD_YAML + "metric: bleu\n")),
    Case("task-label-without-labels", T, ["task.yaml", "labels", "fix"], setup=_yaml(GOOD_YAML + "metric: label\n")),
    Case("task-labels-unused", T, ["task.yaml", "'positive'", "not the output of any example"],
         setup=_yaml(GOOD_YAML + "metric: label\nlabels: [positive, y1]\n")),
    Case("task-labels-scalar", T, ["task.yaml", "labels"], setup=_yaml(GOOD_YAML + "labels: positive\n")),
    Case("task-shots-too-many", T, ["task.yaml", "shots", "only 4 examples"],
         setup=_yaml(GOOD_YAML + "shots: 100000\n")),
    Case("task-shots-negative", T, ["task.yaml", "shots"], setup=_yaml(GOOD_YAML + "shots: -1\n")),
    Case("task-missing-data-file", T, ["nope.jsonl"],
         setup=_yaml("name: t\ndata: {train: nope.jsonl, dev: dev.jsonl, test: test.jsonl}\n")),
    Case("task-bad-jsonl-line", T, ["train.jsonl:2", "not valid JSON", "fix"],
         setup=lambda d: (_task(d, GOOD_YAML), (d / "t" / "train.jsonl").write_text('{"input": "a", "output": "b"}\n'
                                                                                     "{not json\n"))),
    Case("task-row-without-output", T, ["train.jsonl", "output"],
         setup=_yaml(GOOD_YAML, {"train": [{"input": "a"}]})),
    Case("task-empty-split", T, ["dev", "empty"], setup=_yaml(GOOD_YAML, {"dev": []})),
    Case("task-in-bracket-folder", ["optimize", "{d}/data[v2]/t", *FAKE], ["data[v2]", "metrc"],
         setup=lambda d: _task(d / "data[v2]", GOOD_YAML + "metrc: f1\n")),
    Case("task-max-output-tokens-zero", T, ["max_output_tokens"], setup=_yaml(GOOD_YAML + "max_output_tokens: 0\n")),
    # --- instruction-induction files
    Case("induction-not-json", ["optimize", "mytask", "--data-dir", "{d}/ii", *FAKE], ["mytask.json"],
         setup=_induction("{oops")),
    Case("induction-no-examples", ["optimize", "mytask", "--data-dir", "{d}/ii", *FAKE], ["mytask.json", "examples"],
         setup=_induction("{\"metadata\": {}}")),
    Case("induction-example-without-output", ["optimize", "mytask", "--data-dir", "{d}/ii", *FAKE],
         ["mytask.json", "output"], setup=_induction({"1": {"input": "a"}})),
    Case("data-dir-missing", ["optimize", "topic", "--data-dir", "{d}/missing", *FAKE],
         ["--data-dir", "missing", "does not exist"]),
    Case("data-dir-is-a-file", ["optimize", "topic", "--data-dir", "{d}/f.txt", *FAKE], ["is a file"],
         setup=_file("f.txt", "x")),
    Case("data-dir-env-missing", ["optimize", "topic", *FAKE], ["APO_DATA_DIR", "does not exist"],
         env={"APO_DATA_DIR": "{d}/nowhere"}),
    # --- datasets: specs
    Case("datasets-no-builder", ["optimize", "datasets:", *FAKE], ["name a dataset"]),
    Case("datasets-csv-without-files", ["optimize", "datasets:csv", *FAKE], ["datasets:csv", "data_files=", "fix"],
         setup=_file("rows.csv", "input,output\na,b\n")),
    Case("hf-no-name", ["optimize", "hf:", *FAKE], ["name a dataset"]),
    # --- options
    Case("budget-zero", ["optimize", "topic", *FAKE, "--budget-calls", "0"],
         ["--budget-calls", "greater than or equal to 1, got 0"]),
    Case("max-calls-negative", ["optimize", "topic", *FAKE, "--max-calls=-3"], ["--max-calls"]),
    Case("budget-time-zero", ["optimize", "topic", *FAKE, "--budget-time", "0"], ["--budget-time"]),
    Case("candidates-zero", ["optimize", "topic", *FAKE, "--searcher", "ape", "--candidates", "0"], ["--candidates"]),
    Case("dev-size-too-big", ["optimize", "topic", *FAKE, "--dev-size", "100000"],
         ["--dev-size 100000", "60 dev examples", "fix"]),
    Case("test-size-too-big", ["optimize", "topic", *FAKE, "--test-size", "5000"], ["--test-size 5000", "108 test"]),
    Case("shots-too-many", ["optimize", "topic", *FAKE, "--shots", "1000"], ["--shots 1000", "training examples"]),
    Case("shots-negative", ["optimize", "topic", *FAKE, "--shots", "-2"], ["--shots"]),
    Case("metric-unknown", ["optimize", "topic", *FAKE, "--metric", "bleu"], ["bleu", "exact_match"]),
    Case("searcher-unknown", ["optimize", "topic", *FAKE, "--searcher", "magic"], ["magic"]),
    Case("option-of-other-searcher", ["optimize", "topic", *FAKE, "--trials", "3"], ["trials", "--searcher joint"]),
    Case("base-url-not-url", ["optimize", "topic", *FAKE, "--base-url", "not a url"], ["--base-url", "http"]),
    Case("base-url-bad-port", ["optimize", "topic", *FAKE, "--base-url", "http://127.0.0.1:notaport/v1"],
         ["--base-url", "port"]),
    Case("request-timeout-zero", ["optimize", "topic", *FAKE, "--request-timeout", "0"], ["--request-timeout"]),
    Case("alpha-out-of-range", ["optimize", "topic", *FAKE, "--alpha", "1.5"], ["--alpha"]),
    Case("prefer-unknown", ["optimize", "topic", *FAKE, "--prefer", "cheapest"], ["--prefer", "cheapest"]),
    Case("initial-prompt-missing-file", ["optimize", "topic", *FAKE, "--initial-prompt", "@{d}/none.txt"],
         ["none.txt", "not found"]),
    Case("job-file-missing", ["optimize", "--config", "{d}/job.yaml", *FAKE], ["job.yaml", "not found"]),
    Case("job-file-duplicate-key", ["optimize", "--config", "{d}/job.yaml", *FAKE], ["job.yaml", "'rounds'", "twice"],
         setup=_file("job.yaml", "task: topic\nrounds: 1\nrounds: 2\n")),
    Case("job-file-unknown-option", ["optimize", "--config", "{d}/job.yaml", *FAKE], ["job.yaml", "roundz"],
         setup=_file("job.yaml", "task: topic\nroundz: 1\n")),
    Case("job-file-bad-json", ["optimize", "--config", "{d}/job.json", *FAKE], ["job.json", "not valid JSON"],
         setup=_file("job.json", "{\"task\": ")),
    Case("no-task", ["optimize", *FAKE], ["no task given"]),
    Case("demo-k-bad", ["optimize", "topic", *FAKE, "--searcher", "demos", "--demo-k", "1,x"], ["--demo-k"]),
    # --- model strings and endpoints
    Case("model-unknown-provider", ["optimize", "topic", "--target", "nosuch:model"], ["nosuch"]),
    Case("model-openai-no-key", ["optimize", "topic", "--target", "openai:gpt-4o-mini"], ["OPENAI_API_KEY"],
         env={"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}),
    Case("model-anthropic-no-key", ["optimize", "topic", "--target", "anthropic:claude-x"], ["ANTHROPIC_API_KEY"],
         env={"ANTHROPIC_API_KEY": "", "ANTHROPIC_BASE_URL": ""}),
    Case("model-refused-port", ["optimize", "topic", "--target", "openai:m", "--base-url", "http://127.0.0.1:9/v1"],
         ["http://127.0.0.1:9/v1", "cannot connect", "fix"]),
    Case("model-unknown-fake", ["optimize", "topic", "--target", "fake:nosuch"], ["fake:nosuch"]),
    Case("model-unknown-embedded", ["optimize", "topic", "--target", "embedded:nosuch"],
         ["unknown embedded model 'nosuch'", "known"]),
    Case("max-cost-without-price", ["optimize", "topic", "--target", "openai:m", "--base-url", "http://127.0.0.1:9/v1",
                                    "--max-cost", "1"], ["--max-cost", "price"]),
    # --- prices
    Case("prices-missing-file", ["optimize", "topic", *FAKE, "--prices", "{d}/p.json"], ["price file", "p.json"]),
    Case("prices-not-json", ["optimize", "topic", *FAKE, "--prices", "{d}/p.json"], ["price file", "p.json"],
         setup=_file("p.json", "{x")),
    Case("prices-bad-pair", ["optimize", "topic", *FAKE, "--prices", "{d}/p.json"], ["p.json", "[input, output]"],
         setup=_file("p.json", '{"openai:m": [1]}')),
    # --- eval
    Case("eval-limit-negative", ["eval", "topic", "--model", "fake:upper", "--prompt", "x", "--limit", "-1"],
         ["--limit", "at least 1"]),
    Case("eval-limit-zero", ["eval", "topic", "--model", "fake:upper", "--prompt", "x", "--limit", "0"], ["--limit"]),
    Case("eval-limit-too-big", ["eval", "topic", "--model", "fake:upper", "--prompt", "x", "--limit", "1000"],
         ["--limit 1000", "108"]),
    Case("eval-shots-too-many", ["eval", "topic", "--model", "fake:upper", "--prompt", "x", "--shots", "999"],
         ["--shots 999", "training examples"]),
    Case("eval-no-task", ["eval", "--prompt", "x"], ["needs a TASK"]),
    Case("eval-from-run-missing", ["eval", "--from-run", "nope"], ["no run 'nope'"]),
    # --- resume and runs
    Case("resume-missing", ["resume", "nope"], ["no run 'nope'", "apo runs list"]),
    Case("resume-truncated-config", ["resume", "@run"], ["config.json", "restore the file"],
         setup=_damaged("config.json", '{"schema": 2, "conf')),
    Case("runs-show-missing", ["runs", "show", "nope"], ["no run 'nope'"]),
    Case("runs-show-bad-result", ["runs", "show", "@run"], ["result.json", "apo resume"],
         setup=_damaged("result.json", '{"best":')),
    Case("runs-repair-missing", ["runs", "repair", "nope"], ["no run 'nope'"]),
    Case("export-missing", ["export", "nope"], ["no run 'nope'"]),
    Case("export-out-folder", ["export", "@run", "--out", "{d}"], ["--out", "is a folder"], setup=_finished_run),
    # --- leaderboard
    Case("leaderboard-empty", ["leaderboard"], ["runs"]),
    Case("leaderboard-result-list", ["leaderboard"], ["result.json"], setup=_damaged("result.json", "[]")),
    Case("leaderboard-out-missing-folder", ["leaderboard", "--format", "html", "--out", "{d}/missing/x.html"],
         ["--out", "does not exist", "mkdir"]),
    Case("leaderboard-out-is-folder", ["leaderboard", "--format", "html", "--out", "{d}"], ["--out", "is a folder"]),
    Case("leaderboard-no-match", ["leaderboard", "--task", "nosuch"], ["no runs match", "--task nosuch"],
         setup=_finished_run),
    Case("leaderboard-width-zero", ["leaderboard", "--width", "0"], ["--width"]),
    # --- cache and filesystem
    Case("cache-corrupt-stats", ["cache", "stats"], ["responses.sqlite", "damaged", "apo cache clear"],
         setup=_file("cache/responses.sqlite", os.urandom(4096))),
    Case("cache-corrupt-optimize", ["optimize", "topic", *FAKE], ["damaged", "apo cache clear"],
         setup=_file("cache/responses.sqlite", b"SQLite format 3\x00" + b"\x07" * 4000)),
    Case("cache-dir-is-a-file", ["optimize", "topic", *FAKE], ["response cache", "APO_CACHE_DIR"],
         setup=_file("cachefile", "x"), env={"APO_CACHE_DIR": "{d}/cachefile"}),
    Case("runs-dir-is-a-file", ["optimize", "topic", *FAKE], ["runs folder", "is a file"],
         setup=_file("runsfile", "x"), env={"APO_RUNS_DIR": "{d}/runsfile"}),
    Case("runs-dir-under-a-file", ["optimize", "topic", *FAKE], ["runs folder", "is a file"],
         setup=_file("runsfile", "x"), env={"APO_RUNS_DIR": "{d}/runsfile/sub"}),
    Case("models-pull-unknown", ["models", "pull", "nosuch"], ["nosuch"], code=2),
]


def _fill(value: str, d: Path, run_id: str) -> str:
    return value.replace("{d}", str(d)).replace("@run", run_id)


def _files(d: Path) -> set[str]:
    found = set()
    for root in (d / "runs", d / "cache"):
        if root.is_dir():
            found |= {str(p) for p in root.rglob("*")}
    return found


def test_the_table_has_at_least_sixty_distinct_inputs():
    assert len({c.id for c in CASES}) == len(CASES) >= 60


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path, monkeypatch, capsys):
    d = tmp_path / "w"
    d.mkdir()
    monkeypatch.chdir(d)
    monkeypatch.setenv("APO_RUNS_DIR", str(d / "runs"))
    monkeypatch.setenv("APO_CACHE_DIR", str(d / "cache"))
    monkeypatch.setattr("optimizer.models.cache.default_cache_path", real_cache_path)  # the cache of APO_CACHE_DIR
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.delenv("APO_DATA_DIR", raising=False)
    if case.setup:
        case.setup(d)
    run_id = (d / "run_id").read_text() if (d / "run_id").exists() else "no-run"
    for key, value in case.env.items():
        monkeypatch.setenv(key, _fill(value, d, run_id))
    before = _files(d)
    capsys.readouterr()
    try:
        code = main([_fill(a, d, run_id) for a in case.argv])
    except SystemExit as exc:  # argparse refuses malformed options itself, with exit code 2
        code = exc.code
    out, err = capsys.readouterr()
    text = " ".join((out + err).split())
    assert code == case.code, text
    assert "Traceback" not in text
    for fragment in case.says:
        assert _fill(fragment, d, run_id) in text, f"{fragment!r} not in: {text}"
    new = _files(d) - before
    assert not new, f"left behind: {sorted(new)}"
    shutil.rmtree(d, ignore_errors=True)
