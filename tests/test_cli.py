"""The command line: exit codes, help without torch, subcommands on the fake model, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from optimizer.cli.main import main

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env_extra: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "optimizer", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_help_does_not_import_torch():
    code = ("import sys\nfrom optimizer.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "for sub in ('optimize', 'eval', 'runs', 'tasks', 'leaderboard', 'resume', 'models', 'cache'):\n"
            "    try:\n        main([sub, '--help'])\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'datasets') if m in sys.modules]\n"
            "assert not heavy, heavy\nprint('light')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "light" in out.stdout


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "optimize" in capsys.readouterr().out


def test_a_usage_error_ends_with_what_was_wrong_not_a_screen_of_usage(capsys):
    with pytest.raises(SystemExit) as exc:  # apo optimize has over 40 lines of usage: the error, then where help is
        main(["optimize", "capitalize_words", "--steps", "-3"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["apo optimize: error: argument --steps: '-3' is not a number of at least 1",
                   "(`apo optimize --help` lists every option)"]
    with pytest.raises(SystemExit) as exc:  # a short usage is still shown whole, above the error
        main(["runs"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("usage: apo runs ")
    assert err[-1] == "apo runs: error: the following arguments are required: ACTION"


def test_malformed_task_file_exit_code_2(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "task.yaml").write_text("name: bad\nmetric: exact_match\nshots: many\n"
                                   "data: {train: t.jsonl, dev: t.jsonl, test: t.jsonl}\n")
    (bad / "t.jsonl").write_text('{"input": "a", "output": "b"}\n')
    out = run_cli("optimize", str(bad), "--target", "fake:upper")
    assert out.returncode == 2
    assert "task.yaml" in out.stderr and "shots" in out.stderr


def test_missing_task_exit_code_2():
    out = run_cli("optimize", "no_such_task_anywhere", "--target", "fake:upper")
    assert out.returncode == 2
    assert "no_such_task_anywhere" in out.stderr


def test_unknown_model_exit_code_2():
    out = run_cli("optimize", "capitalize_words", "--target", "nonsense:model")
    assert out.returncode == 2
    assert "model strings look like" in out.stderr


def test_bad_option_value_exit_code_2():
    out = run_cli("optimize", "capitalize_words", "--target", "fake:upper", "--searcher", "ape", "--rounds", "-1")
    assert out.returncode == 2


def test_optimize_runs_show_and_list(tmp_path):
    env = {"APO_RUNS_DIR": str(tmp_path / "runs"), "APO_CACHE_DIR": str(tmp_path / "cache")}
    out = run_cli("optimize", "capitalize_words", "--target", "fake:upper", "--searcher", "ape", "--rounds", "1",
                  "--json", env_extra=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "complete"
    assert result["best"]["text"] and len(result["candidates"]) > 3
    run_dir = Path(result["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["config"]["target"] == "fake:upper" and config["provenance"]["task"]["sizes"]["test"] >= 30
    listing = run_cli("runs", "list", env_extra=env)
    assert result["run_id"] in listing.stdout
    shown = run_cli("runs", "show", result["run_id"], env_extra=env)
    assert shown.returncode == 0 and "top candidates" in shown.stdout


def test_runs_dir_and_debug_are_taken_after_any_command_too(tmp_path):
    from optimizer.cli.parser import build_parser

    parser = build_parser()
    for argv in (["optimize", "capitalize_words"], ["runs", "list"], ["runs", "show", "X"], ["tasks", "list"],
                 ["serve", "--port", "9000"], ["leaderboard"], ["resume", "X"], ["cache", "stats"]):
        args = parser.parse_args([*argv, "--runs-dir", "D", "--debug"])
        assert args.runs_dir == "D" and args.debug is True, argv
        args = parser.parse_args(["--runs-dir", "E", *argv])  # before the command, as before; not overridden
        assert args.runs_dir == "E" and args.debug is False, argv
    assert parser.parse_args(["--runs-dir", "E", "runs", "list", "--runs-dir", "F"]).runs_dir == "F"
    env = {"APO_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "80"}
    out = run_cli("optimize", "capitalize_words", "--target", "fake:upper", "--searcher", "ape", "--rounds", "1",
                  "--runs-dir", str(tmp_path / "elsewhere"), env_extra=env)
    assert out.returncode == 0, out.stderr
    [run] = (tmp_path / "elsewhere").iterdir()
    listing = run_cli("runs", "list", "--runs-dir", str(tmp_path / "elsewhere"), env_extra=env)
    row = next(line for line in listing.stdout.splitlines() if run.name in line)  # the id whole, on an 80-column line
    assert max(len(line) for line in listing.stdout.splitlines()) <= 80 and "complete" in row and "…" not in row


def test_tasks_list_and_show():
    listing = run_cli("tasks", "list")
    assert listing.returncode == 0
    for name in ("past_tense", "topic", "date_format", "double_number", "capitalize_words", "en_to_fr_words"):
        assert name in listing.stdout
    shown = run_cli("tasks", "show", "topic")
    assert shown.returncode == 0 and "label" in shown.stdout


def test_eval_on_fake():
    out = run_cli("eval", "capitalize_words", "--prompt", "Write the input in capital letters.", "--model",
                  "fake:upper", "--split", "dev", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["n"] == 120 and data["split"] == "dev"



def test_models_list_names_every_embedded_model():
    out = run_cli("models", "list")
    assert out.returncode == 0, out.stderr
    assert "smollm2-135m-instruct" in out.stdout and "gemma3-270m" in out.stdout and "Apache-2.0" in out.stdout


def test_cache_stats_and_clear(tmp_path):
    env = {"APO_RUNS_DIR": str(tmp_path / "runs"), "APO_CACHE_DIR": str(tmp_path / "cache")}
    assert run_cli("optimize", "topic", "--target", "fake:upper", "--searcher", "ape", "--rounds", "0",
                   env_extra=env).returncode == 0
    stats = run_cli("cache", "stats", env_extra=env)
    assert stats.returncode == 0 and "fake:upper" in stats.stdout
    cleared = run_cli("cache", "clear", env_extra=env)
    assert cleared.returncode == 0 and "deleted" in cleared.stdout and "deleted 0 " not in cleared.stdout
    assert "fake:upper" not in run_cli("cache", "stats", env_extra=env).stdout


def test_max_calls_alias_caps_the_run(tmp_path):
    env = {"APO_RUNS_DIR": str(tmp_path / "runs")}
    out = run_cli("optimize", "topic", "--target", "fake:upper", "--max-calls", "25", "--no-cache", "--json",
                  env_extra=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["status"] == "partial" and result["calls"] <= 25


def test_job_file_with_options_typed_over_it(tmp_path):
    env = {"APO_RUNS_DIR": str(tmp_path / "runs"), "APO_CACHE_DIR": str(tmp_path / "cache")}
    job = tmp_path / "job.yaml"
    job.write_text("task: capitalize_words\ntarget: fake:upper\nsearcher: ape\nrounds: 2\ncandidates: 3\nseed: 7\n"
                   "budget:\n  max_calls: 500\ndev_limit: 6\ntest_limit: 6\n")
    out = run_cli("optimize", "--config", str(job), "--rounds", "0", "--max-calls", "400", "--json", env_extra=env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    config = json.loads((Path(result["run_dir"]) / "config.json").read_text())["config"]
    # typed: rounds and the call budget; from the file: everything else; defaults stay defaults
    assert (config["ape"]["rounds"], config["budget"]["max_calls"]) == (0, 400)
    assert (config["task"], config["target"], config["seed"], config["ape"]["candidates"]) == (
        "capitalize_words", "fake:upper", 7, 3)
    assert (config["dev_limit"], config["test_limit"], config["concurrency"], config["cache"]) == (6, 6, 4, True)
    other = run_cli("optimize", "topic", "--config", str(job), "--dev-size", "5", "--dry-run", "--json", env_extra=env)
    assert other.returncode == 0, other.stderr
    from optimizer import estimate

    expected = estimate("topic", config=job, dev_limit=5)  # the typed task and --dev-size win over the file
    assert json.loads(other.stdout)["pairs"] == expected.pairs
    assert expected.pairs != estimate(config=job).pairs


def test_job_file_errors_exit_2_and_name_the_file(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("task: capitalize_words\nrouds: 1\n")
    out = run_cli("optimize", "--config", str(job))
    assert out.returncode == 2 and "job.yaml" in out.stderr and "did you mean 'rounds'" in out.stderr
    missing = run_cli("optimize", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "nope.yaml not found" in missing.stderr
    no_task = run_cli("optimize", "--target", "fake:upper")
    assert no_task.returncode == 2 and "no task given" in no_task.stderr


def test_options_of_the_other_searcher_exit_2(capsys):
    assert main(["optimize", "capitalize_words", "--iterations", "3"]) == 2
    assert "--searcher autoprompt" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--token-candidates", "--candidates"])
def test_autoprompt_token_candidates_in_the_dry_run(flag, capsys):
    args = ["optimize", "capitalize_words", "--searcher", "autoprompt", flag, "7", "--iterations", "2",
            "--batch-size-grad", "4", "--eval-batch-size", "4", "--dry-run"]
    assert main(args) == 0
    # per iteration: 2 x 4 gradient passes, (7 + 1) triggers on 4 examples
    assert "at most 80 example passes in 2 iterations" in capsys.readouterr().out


def test_a_budget_too_small_for_any_prompt_says_so(tmp_path):
    out = run_cli("optimize", "capitalize_words", "--target", "fake:upper", "--budget-calls", "30", "--no-cache",
                  env_extra={"APO_RUNS_DIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert "partial" in out.stdout and "nothing to recommend" in out.stdout and "--budget-calls" in out.stdout
