"""Job speed benchmark: where does the time of a default job go?

Runs the default job (``apo optimize TASK`` with its defaults, the response cache off so every call runs) on
each task and splits its wall time into:

- ``propose``: the proposer's calls (writing instructions, critiques, rewrites);
- ``search_generate`` / ``search_logprob``: the target's calls while searching (racing the candidates and the
  baselines on dev), by kind;
- ``finish_generate`` / ``finish_logprob``: the target's calls after the search (confirmation on held-out dev
  examples, then the test split);
- ``other``: everything else (tokenization outside the model calls, the journal, selection, Python).

The model calls are timed around the provider call itself (``ModelClient._call``), so a call's time includes
its tokenization and the model's forward passes. Per task it also gives the calls, tokens and scored examples
(target requests), and seconds per scored example. Written to OUT.json and OUT.md.

``--paths`` runs each task once per path, in one invocation: ``plain`` (the local model without its shared-prefix
cache, ``APO_PREFIX_CACHE=0``), ``noreuse`` (with it, but answers not reusing the log-probability pass of the same
prompt, ``APO_LOGPROB_REUSE=0``), ``prefix`` (both, the default) and ``llama`` (the same SmolLM2 GGUF served by
llama.cpp's OpenAI-compatible server on 127.0.0.1, ``openai-completions:``, with as many threads as
``OMP_NUM_THREADS``); the report gives each path's wall time and the ratios, and whether the paths shipped the same
prompt with the same test score.

Usage (the committed results were made with the commands in evals/README.md):

    OMP_NUM_THREADS=2 python evals/bench_job_speed.py --paths plain,prefix,llama --out evals/results/job_speed
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from optimizer import RunConfig, optimize
from optimizer.models.client import ModelClient
from optimizer.run import engine
from optimizer.run.provenance import git_commit

TASKS = ["capitalize_words", "past_tense", "topic"]
"""Three bundled tasks of different answer kinds (a rewrite, a word form, a label)."""
PARTS = ["propose", "search_generate", "search_logprob", "finish_generate", "finish_logprob", "other"]


class Clock:
    """Seconds and requests of model calls by part, while installed (see :meth:`installed`)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.requests: dict[str, int] = defaultdict(int)
        self.phase = "search"

    def part(self, role: str, kind: str) -> str:
        return "propose" if role == "proposer" else f"{self.phase}_{kind}"

    @contextlib.contextmanager
    def installed(self) -> Iterator[Clock]:
        """Time every provider call and mark the phase after the search."""
        clock, real_run, real_finish = self, ModelClient._run, engine.finish

        def timed_run(client: ModelClient, kind: str, requests: Any, result_type: Any, call: Any) -> Any:
            def timed_call(batch: Any) -> Any:
                start = time.perf_counter()
                try:
                    return call(batch)
                finally:
                    part = clock.part(client.role, kind)
                    clock.seconds[part] += time.perf_counter() - start
                    clock.requests[part] += len(batch)
            return real_run(client, kind, requests, result_type, timed_call)

        def marked_finish(*args: Any, **kwargs: Any) -> Any:
            clock.phase = "finish"
            return real_finish(*args, **kwargs)

        ModelClient._run = timed_run  # type: ignore[method-assign]
        engine.finish = marked_finish  # type: ignore[assignment]
        try:
            yield self
        finally:
            ModelClient._run = real_run  # type: ignore[method-assign]
            engine.finish = real_finish


PATHS = {"plain": {"APO_PREFIX_CACHE": "0"}, "noreuse": {"APO_PREFIX_CACHE": "1", "APO_LOGPROB_REUSE": "0"},
         "prefix": {"APO_PREFIX_CACHE": "1", "APO_LOGPROB_REUSE": "1"}, "llama": {}}
"""What each path sets in the environment (``noreuse``: the prefix cache without reusing log-probability passes for
answers; ``llama``: the same GGUF through llama.cpp's server, see :func:`llama_server`)."""


@contextlib.contextmanager
def llama_server(threads: int) -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server on 127.0.0.1 serving the embedded SmolLM2 GGUF; yields its base URL and
    stops it (by its PID) on the way out."""
    from bench_concurrency import start_server  # the same start as the concurrency benchmark

    proc, url = start_server(threads)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_task(task: str, args: argparse.Namespace, runs_dir: Path, path: str = "prefix",
             base_url: str | None = None) -> dict[str, Any]:
    """One default job on ``task`` on one path: its wall time by part."""
    os.environ.update(PATHS[path])
    clock = Clock()
    options = json.loads(args.set) if args.set else {}
    target = "openai-completions:smollm2" if path == "llama" else args.target
    if path == "llama":
        options["base_url"] = base_url
    with clock.installed():
        start = time.perf_counter()
        result = optimize(task, target=target, seed=args.seed, cache=False, runs_dir=runs_dir,
                          data_dir=args.data_dir, **options)
        wall = time.perf_counter() - start
    parts = {p: round(clock.seconds.get(p, 0.0), 2) for p in PARTS[:-1]}
    parts["other"] = round(wall - sum(clock.seconds.values()), 2)
    target = result.usage.get("target", {})
    scored = sum(n for p, n in clock.requests.items() if p != "propose")
    return {"task": task, "path": path, "searcher": result.searcher, "run_id": result.run_id, "wall_s": round(wall, 2),
            "parts_s": parts, "requests": dict(clock.requests), "target_calls": target.get("calls"),
            "target_tokens": (target.get("prompt_tokens", 0) + target.get("completion_tokens", 0)),
            "proposer_calls": result.usage.get("proposer", {}).get("calls", 0), "scored_examples": scored,
            "s_per_scored_example": round((wall - parts["propose"]) / scored, 4) if scored else None,
            "test_acc": result.best.test.acc if result.best and result.best.test else None,
            "shipped": result.best.text if result.best else None}


def markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown table (seconds, and each part's share of the wall time)."""
    lines = [f"# Job speed: {report['target']}, searcher {report['searcher']}", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; seed {report['seed']}; response "
             f"cache off; OMP_NUM_THREADS={report['omp_threads']}.", "",
             "| task | path | wall s | " + " | ".join(PARTS)
             + " | target calls | scored examples | s / scored example |",
             "|---|---|---|" + "---|" * len(PARTS) + "---|---|---|"]
    for r in report["rows"]:
        shares = [f"{r['parts_s'][p]:.1f} ({r['parts_s'][p] / r['wall_s']:.0%})" for p in PARTS]
        lines.append(f"| {r['task']} | {r['path']} | {r['wall_s']:.1f} | " + " | ".join(shares)
                     + f" | {r['target_calls']} | {r['scored_examples']} | {r['s_per_scored_example']} |")
    if any(r["path"] == "llama" for r in report["rows"]):
        lines += ["", "llama rows: the server is sent several requests at once (`concurrency`, default 4), and each "
                      "request's time is counted in its part, so the parts overlap and add up to more than the wall "
                      "time (`other` is then negative); compare wall times and seconds per scored example."]
    for before, after in (("plain", "prefix"), ("noreuse", "prefix"), ("llama", "prefix")):
        pairs = [(a, b) for a in report["rows"] for b in report["rows"]
                 if a["task"] == b["task"] and (a["path"], b["path"]) == (before, after)]
        if pairs:
            lines += ["", f"| task | {before} s | {after} s | speed-up | {before} s / scored example | {after} s / "
                          f"scored example | throughput ratio | same shipped prompt and test score |",
                      "|---|---|---|---|---|---|---|---|"]
            lines += [f"| {a['task']} | {a['wall_s']:.1f} | {b['wall_s']:.1f} | {a['wall_s'] / b['wall_s']:.2f}x | "
                      f"{a['s_per_scored_example']} | {b['s_per_scored_example']} | "
                      f"{a['s_per_scored_example'] / b['s_per_scored_example']:.2f}x | "
                      f"{'yes' if (a['shipped'], a['test_acc']) == (b['shipped'], b['test_acc']) else 'no'} |"
                      for a, b in pairs]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated tasks (default: %(default)s)")
    ap.add_argument("--target", default="embedded", help="the target (and, by default, proposer) model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", help="folder of external tasks, for tasks not bundled")
    ap.add_argument("--set", help="more job options as JSON, e.g. '{\"dev_limit\": 10}' (default: none)")
    ap.add_argument("--paths", default="prefix",
                    help="comma-separated: plain (no prefix cache), noreuse (the prefix cache, answers not reusing "
                         "log-probability passes), prefix, llama (llama.cpp's server on the same GGUF, as many "
                         "threads as OMP_NUM_THREADS) (default: %(default)s)")
    ap.add_argument("--out", required=True, help="OUT.json and OUT.md are written")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    paths = [p for p in args.paths.split(",") if p]
    for path in paths:
        if path not in PATHS:
            ap.error(f"--paths: unknown path {path!r}; choose from {', '.join(PATHS)}")
    threads = int(os.environ.get("OMP_NUM_THREADS", "0")) or (os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="apo-job-speed-") as tmp, contextlib.ExitStack() as stack:
        url = stack.enter_context(llama_server(threads)) if "llama" in paths else None
        for task in [t for t in args.tasks.split(",") if t]:
            for path in paths:
                print(f"== {task} ({path})", file=sys.stderr, flush=True)
                rows.append(run_task(task, args, Path(tmp), path, url))
                print(f"   {rows[-1]['wall_s']} s: {rows[-1]['parts_s']}", file=sys.stderr, flush=True)
    report = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
              "git_commit": git_commit(), "target": args.target, "seed": args.seed,
              "searcher": ", ".join(sorted({r["searcher"] for r in rows}))
              or str(RunConfig.model_fields["searcher"].default),
              "omp_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "rows": rows}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
