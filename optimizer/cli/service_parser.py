"""The parsers of ``apo serve``, ``apo submit``, ``apo jobs`` and ``apo sweep`` (the service; see optimizer.service)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from optimizer.cli.argtypes import positive, positive_float

__all__ = ["CLIENT_ARGS", "add_service_parsers"]

CLIENT_ARGS = frozenset({"command", "runs_dir", "debug", "argv", "task", "job_file", "server", "token", "token_file",
                         "wait", "watch", "json", "action", "job_id"})
"""``apo submit`` arguments that are not options of the job."""

SERVE_HELP = """Serve the job API over HTTP: submit optimization jobs, watch their events, cancel them, read
results, exports and the leaderboard. Each job is an apo run in the runs folder (so `apo runs list`,
`apo leaderboard` and `apo resume` see it), run in its own worker process; at most --workers at once,
the others queued. The job table is <runs dir>/service.sqlite: a server stopped or killed at any
moment and started again runs its queued jobs and resumes its running ones from their journals.

Every endpoint but /healthz needs `Authorization: Bearer TOKEN`. The token is made on the first
start into --token-file (default <runs dir>/service.token, mode 0600); give it to clients. The API
is described at /docs and /openapi.json (token needed). Provider API keys are read from this
server's environment only, never from requests. Jobs with an API model (openai:, anthropic:) must
carry a budget (max_calls or max_cost) within the ceilings set here."""

SERVE_EPILOG = """examples:
  apo serve                                        # http://127.0.0.1:8765, runs in ./runs
  apo serve --port 9000 --runs-dir /srv/apo/runs --workers 2
  apo serve --max-job-calls 2000 --max-total-calls 20000   # ceilings for API-model jobs
  TOKEN=$(cat runs/service.token)
  curl -H "Authorization: Bearer $TOKEN" -d '{"task": "capitalize_words", "config": {"rounds": 1}}' \\
      http://127.0.0.1:8765/jobs
"""

SUBMIT_HELP = """Send a job to an `apo serve` server and print its id (with --wait, wait for it and print its
result; with --watch, print its events as they come). TASK is a task name the server knows (its
bundled tasks and those of its --data-dir), or a local task folder or task.yaml, which is sent
whole. The job options are those of `apo optimize`, sent as typed; the server checks them with
the same rules and messages. The server and token come from --server/--token (or --token-file),
else APO_SERVER and APO_TOKEN."""

SUBMIT_EPILOG = """examples:
  export APO_SERVER=http://127.0.0.1:8765 APO_TOKEN=$(cat runs/service.token)
  apo submit capitalize_words --target fake:upper --rounds 1
  apo submit ./my_task --target openai:gpt-4o-mini --max-calls 500 --wait
  apo submit --config job.yaml --watch
"""

JOBS_HELP = """List the jobs of an `apo serve` server, show one (state, progress, usage, verdict), watch its
events as they are written (to the end of the job), or cancel it: a queued job is cancelled at once,
a running one stops at its next model call and keeps a partial result."""


def _add_connection_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--server", metavar="URL", help="the server (default: $APO_SERVER), e.g. http://127.0.0.1:8765")
    p.add_argument("--token", help="its bearer token (default: $APO_TOKEN); prefer --token-file, which keeps it out of "
                                   "the process list")
    p.add_argument("--token-file", metavar="FILE", help="a file holding the token (the server's service.token)")


def _add_serve_parser(sub) -> None:
    sv = sub.add_parser("serve", help="serve the HTTP job API (submit, watch, cancel jobs)", description=SERVE_HELP,
                        epilog=SERVE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sv.add_argument("--host", default="127.0.0.1",
                    help="interface to listen on (default: 127.0.0.1, this machine only; anything else exposes the "
                         "API to the network: put TLS in front)")
    sv.add_argument("--port", type=int, default=8765, help="TCP port (default: 8765; 0: any free port, printed)")
    sv.add_argument("--workers", type=positive, default=1, help="jobs run at once, each in its own process "
                                                                "(default: 1)")
    sv.add_argument("--token-file", metavar="FILE", help="where the token is kept (default: <runs dir>/service.token)")
    sv.add_argument("--data-dir", help="folder of external task data whose task names jobs may use")
    sv.add_argument("--max-job-calls", type=positive, metavar="N",
                    help="most model calls one API-model job may budget (jobs with an API model need a budget)")
    sv.add_argument("--max-total-calls", type=positive, metavar="N",
                    help="most model calls all API-model jobs together may budget")
    sv.add_argument("--max-job-cost", type=positive_float, metavar="USD", help="most dollars one API-model job may "
                                                                               "budget")
    sv.add_argument("--max-total-cost", type=positive_float, metavar="USD",
                    help="most dollars all API-model jobs together may budget")
    sv.add_argument("--max-body-bytes", type=positive, default=5_000_000, metavar="BYTES",
                    help="largest request accepted (default: 5000000)")
    sv.add_argument("--max-examples", type=positive, default=10_000, metavar="N",
                    help="most examples per split of an uploaded task (default: 10000)")
    sv.add_argument("--cancel-grace", type=positive_float, default=30.0, metavar="SECONDS",
                    help="how long a cancelled job may take to stop and write its partial result before its process "
                         "is killed (default: 30)")
    sv.add_argument("--executor", choices=("local", "ray"), default="local",
                    help="where jobs run: local worker processes (default), or Ray tasks (a local Ray instance with "
                         "--workers CPUs, or the cluster of --ray-address); the runs folder must be on storage every "
                         "Ray node sees")
    sv.add_argument("--ray-address", metavar="ADDRESS", help="the Ray cluster to join with --executor ray: auto (the "
                                                             "one started on this node) or ray://HOST:PORT")


def _add_submit_parser(sub, add_job_options: Callable[[argparse.ArgumentParser, bool], None]) -> None:
    sm = sub.add_parser("submit", help="send a job to an apo server", description=SUBMIT_HELP, epilog=SUBMIT_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter, argument_default=argparse.SUPPRESS)
    sm.add_argument("task", nargs="?", help="a task name the server knows, or a local task folder/file (sent whole)")
    sm.add_argument("--config", dest="job_file", metavar="FILE", help="YAML or JSON job file; options typed here "
                                                                      "override it")
    _add_connection_args(sm)
    sm.add_argument("--wait", action="store_true", help="wait for the job to end and print its result")
    sm.add_argument("--watch", action="store_true", help="print the job's events as they come, to its end")
    sm.add_argument("--json", action="store_true", help="print JSON (the job, or with --wait the result)")
    add_job_options(sm, False)
    for action in sm._actions:  # set by the server, never by a request
        if action.dest in ("data_dir", "base_url", "prices"):
            action.help = argparse.SUPPRESS


def _add_jobs_parser(sub) -> None:
    jobs = sub.add_parser("jobs", help="list, show, watch or cancel the jobs of an apo server", description=JOBS_HELP)
    jsub = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, text in (("list", "every job with its state"), ("show", "one job: state, progress, usage, verdict"),
                       ("watch", "print a job's events as they are written, to its end"),
                       ("cancel", "cancel a job (a running one keeps a partial result)")):
        p = jsub.add_parser(name, help=text)
        if name != "list":
            p.add_argument("job_id", metavar="JOB", help="the job id (apo submit printed it; apo jobs list)")
        p.add_argument("--json", action="store_true", help="print JSON")
        _add_connection_args(p)


SWEEP_HELP = """Run a sweep: every combination of the sweep file's tasks, targets, searchers, seeds and grid
values is one job (an apo run), run by --workers local processes or as Ray tasks. Every job is
checked before any starts. A job whose worker dies (killed, out of memory) is started again up to
--retries times and resumes from its journal; Ctrl-C stops the jobs in flight with partial
results. Running the same file again continues the sweep: finished runs are kept, the others
resume (--new starts afresh). The sweep ends with a leaderboard of its runs, printed and written
to <runs dir>/sweeps/<sweep id>/leaderboard.{md,html}; jobs, outcomes and logs are kept there."""

SWEEP_EPILOG = """a sweep file (YAML):
  tasks: [capitalize_words, sum]     # bundled names, task folders, or names under --data-dir
  targets: [embedded]                # default: embedded
  searchers: [ape, demos]            # default: the default searcher
  seeds: [0, 1, 2]                   # default: [0]
  settings: {rounds: 1, max_calls: 400}   # options of every job, named as in a job file
  grid: {shots: [3, 5]}              # optional: more axes

examples:
  apo sweep nightly.yaml --workers 2
  apo sweep nightly.yaml --executor ray                         # a local Ray instance
  apo sweep nightly.yaml --executor ray --ray-address auto      # the Ray cluster of this node
"""


def _add_sweep_parser(sub) -> None:
    sw = sub.add_parser("sweep", help="run tasks x targets x searchers x seeds as jobs, locally or on Ray",
                        description=SWEEP_HELP, epilog=SWEEP_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sw.add_argument("sweep_file", metavar="SWEEP.yaml", help="the sweep file (YAML, or JSON for .json)")
    _add_sweep_execution(sw, workers=2)
    sw.add_argument("--json", action="store_true", help="print the sweep's outcome as JSON")


def _add_sweep_execution(p: argparse.ArgumentParser, workers: int) -> None:
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: a pool of worker processes on this machine (default); ray: each job a Ray task")
    p.add_argument("--workers", type=positive, default=workers,
                   help=f"jobs at once (local), or CPUs of the local Ray instance (default: {workers})")
    p.add_argument("--ray-address", metavar="ADDRESS", help="with --executor ray: the cluster to join (auto, or "
                                                            "ray://HOST:PORT); default: start a local instance")
    p.add_argument("--retries", type=int, default=2, metavar="N",
                   help="restarts of a job whose worker died; it resumes from its journal (default: 2)")
    p.add_argument("--data-dir", help="folder of external task data (tasks named by it)")
    p.add_argument("--new", action="store_true", help="start afresh instead of continuing the same jobs")


COMPARE_HELP = """Prompt or tune? Run every method on one task and one model at several training sizes, within
one budget: baseline (k-shot prompting with the incumbent, no search), the default instruction
searcher, AutoPrompt where the task is a classification task, and on a local model prompt
tuning, prefix tuning, P-tuning and LoRA (on a masked LM: baseline, AutoPrompt and the trained
methods). Each (method, size, seed) is one run limited to that many training examples (a
larger size keeps every example of a smaller one); --max-calls and --max-seconds are the whole
comparison's, split evenly over its runs. It ends with the leaderboard (a row per method and
size) and the learning curves: test accuracy with bootstrap 95% intervals against training
examples, a table here and a plot in <runs dir>/sweeps/<id>/leaderboard.html. The comparison
is a sweep (its file is <runs dir>/compare/NAME.json): run the same command again to continue
it; killed runs resume."""

COMPARE_EPILOG = """examples:
  apo compare capitalize_words --sizes 8,32,all --max-calls 60000
  apo compare sst2 --data-dir ../shared/data --target embedded:splade-tiny --set test_limit=872
  apo compare antonyms --data-dir DIR --methods baseline,demos,lora --seeds 0,1,2 --set steps=60
"""


def _add_compare_parser(sub) -> None:
    cp = sub.add_parser("compare", help="prompting vs prompt search vs soft prompts and LoRA at several training "
                                        "sizes: learning curves", description=COMPARE_HELP, epilog=COMPARE_EPILOG,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    cp.add_argument("task", metavar="TASK", help="bundled task name, task folder or file, or a name under --data-dir")
    cp.add_argument("--target", "--model", dest="target", default="embedded",
                    help="the model every method runs on (default: embedded)")
    cp.add_argument("--methods", metavar="A,B,...", help="searchers to compare (default: as above)")
    cp.add_argument("--sizes", default="8,32,128,all", metavar="N,N,...",
                    help="training sizes; 'all' is the whole train split (default: 8,32,128,all)")
    cp.add_argument("--seeds", default="0", metavar="S,S,...", help="seeds, each at every size (default: 0)")
    cp.add_argument("--max-calls", type=positive, metavar="N", help="model calls of the whole comparison")
    cp.add_argument("--max-seconds", type=positive_float, metavar="S", help="seconds of the whole comparison")
    cp.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="an option of every run, as in a job file (steps=60, test_limit=200, label_words=...); "
                         "repeatable")
    _add_sweep_execution(cp, workers=1)
    cp.add_argument("--json", action="store_true", help="print the comparison's outcome as JSON")


def add_service_parsers(sub, add_job_options: Callable[[argparse.ArgumentParser, bool], None]) -> None:
    """Add ``serve``, ``submit``, ``jobs`` and ``sweep`` to the subcommands.

    Args:
        sub: the subparsers of ``apo``.
        add_job_options: adds the job options of ``apo optimize`` to a parser (optimizer.cli.parser).
    """
    _add_serve_parser(sub)
    _add_submit_parser(sub, add_job_options)
    _add_jobs_parser(sub)
    _add_sweep_parser(sub)
    _add_compare_parser(sub)
