"""Replay the confirmation test of a search benchmark's runs with fewer finalists or another correction.

Every run records, for each of its finalists (best on dev first) and its incumbent, the score of
every confirmation example (its events). Confirming only the first K of them, corrected over K
(``--correction max-t``, what apo does, or ``holm``, what it did before), ships the largest
significant gain among them, or the incumbent. The test score of that choice is known when it
is the prompt the run shipped or the best candidate on dev (both scored on test); otherwise the
job is counted as unknown, or, with ``--score``, that candidate (its instruction and
demonstrations) is scored on the run's test examples exactly as the run would have
(``optimizer.run.engine.evaluate_prompt``, the response cache as the run used it).
Without ``--score`` no model is called.

Usage (after a search benchmark, its runs restored from OUT_runs.tar.gz by ``bench_search.py --rebuild``):

    python evals/replay_finalists.py --report evals/results/search_demos_grown.json \\
        --runs-dir runs/bench_search_grown --finalists 1,2,3 --score
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import _above, _below, _diff, load_result  # noqa: E402

from optimizer.config import RunConfig  # noqa: E402
from optimizer.run.selection import holm, max_t  # noqa: E402
from optimizer.types import RunResult, ScoredPrompt, prompt_key  # noqa: E402

CORRECTIONS = ("max-t", "holm")


def confirm_scores(run: Path) -> dict[str, dict[str, float]]:
    """Candidate id -> confirmation example id -> its score (accuracy, else log-probability), from the run's events."""
    by_hash: dict[str, str] = {}
    scores: dict[str, dict[str, float]] = {}
    for line in (run / "events.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["type"] == "candidate" and e.get("prompt_hash"):
            by_hash.setdefault(e["prompt_hash"], e["id"])
        elif e["type"] == "score" and e.get("split") == "confirm" and e["prompt_hash"] in by_hash:
            value = e.get("acc") if e.get("acc") is not None else e.get("lp")
            scores.setdefault(by_hash[e["prompt_hash"]], {})[e["example"]] = -1e9 if value is None else value
    return scores


def adjusted(run: Path, result: RunResult, k: int, correction: str) -> list[float]:
    """The first K finalists' adjusted p-values against the incumbent under CORRECTION."""
    sel = result.selection
    finalists = sel.finalists[:k] if sel else []
    if not finalists or sel is None:
        return []
    if correction == "holm":
        return holm([f.p_value for f in finalists])
    scores = confirm_scores(run)
    ref = scores[sel.incumbent or ""]
    ids = sorted(ref)
    diffs = [[scores[f.candidate][i] - ref[i] for i in ids] for f in finalists]
    return max_t(diffs, seed=result.seed)[1]


def score_on_test(run: Path, result: RunResult, candidate: str) -> ScoredPrompt:
    """A candidate the run never scored on test, scored there as the run would have (model calls)."""
    from optimizer.config import Budget
    from optimizer.run.engine import evaluate_prompt
    from optimizer.run.scoring import summarize

    config = RunConfig.model_validate(json.loads((run / "config.json").read_text())["config"])
    config = config.model_copy(update={"budget": Budget()})
    [cand] = [c for c in result.candidates if c.id == candidate]
    _, examples, raw = evaluate_prompt(config, prompt_key(cand.text, cand.demos), split="test",
                                       limit=config.test_limit)
    assert result.best is not None and result.best.test is not None and len(examples) == result.best.test.n
    return ScoredPrompt(name=candidate, candidate=candidate, text=cand.text, demos=cand.demos, dev=cand.dev,
                        test=summarize(raw), test_acc=[raw[ex.id].acc for ex in examples])


def replay(run: Path, result: RunResult, k: int, score: Callable[[str], ScoredPrompt] | None = None,
           correction: str = "max-t") -> str:
    """'better', 'worse', 'same' (not significant either way, or the incumbent kept) or 'unknown' on test;
    SCORE(candidate id), when given, scores a pick the run did not score on test."""
    sel = result.selection
    inc = result.incumbent_prompt()
    finalists = sel.finalists[:k] if sel else []
    wins = [f for f, a in zip(finalists, adjusted(run, result, k, correction)) if sel and a < sel.alpha]
    if not wins:
        return "same"  # the incumbent ships
    pick = max(wins, key=lambda f: f.diff)  # the largest significant gain (what --prefer instruction ships too when
    # every finalist keeps the incumbent's instruction, as the demos searcher's do)
    scored = {p.candidate: p for p in [result.best, *result.baselines] if p is not None and p.test is not None}
    if pick.candidate not in scored:
        if score is None:
            return "unknown"
        scored[pick.candidate] = score(pick.candidate)
    d = _diff(scored[pick.candidate], inc)
    return "better" if _above(d) else "worse" if _below(d) else "same"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--report", required=True, help="a bench_search.py report (OUT.json)")
    ap.add_argument("--runs-dir", required=True, help="the folder holding its runs")
    ap.add_argument("--finalists", default="1,2,3", help="comma-separated numbers of finalists to replay")
    ap.add_argument("--correction", choices=CORRECTIONS, default="max-t",
                    help="how the p-values are corrected for the number of finalists (default max-t, what apo does)")
    ap.add_argument("--score", action="store_true", help="score on test the picks the runs did not (model calls)")
    args = ap.parse_args(argv)
    rows = json.loads(Path(args.report).read_text())["rows"]
    results = []
    for row in rows:
        run = Path(args.runs_dir) / row["run_id"]
        results.append((row["seed"], run, load_result(run)))
    memo: dict[tuple[str, str], ScoredPrompt] = {}

    def scorer(run: Path, result: RunResult) -> Callable[[str], ScoredPrompt] | None:
        def score(candidate: str) -> ScoredPrompt:
            if (run.name, candidate) not in memo:
                print(f"scoring {candidate} of {run.name} on test", file=sys.stderr, flush=True)
                memo[run.name, candidate] = score_on_test(run, result, candidate)
            return memo[run.name, candidate]
        return score if args.score else None

    seeds = sorted({seed for seed, _, _ in results})
    print("| finalists | " + " | ".join(f"seed {s}: better / worse / unknown" for s in seeds) + " | all better |")
    print("|---|" + "---|" * len(seeds) + "---|")
    for k in (int(x) for x in args.finalists.split(",")):
        outcome = [(seed, replay(run, r, k, scorer(run, r), args.correction)) for seed, run, r in results]
        cells = [" / ".join(str(sum(o == kind for s, o in outcome if s == seed))
                            for kind in ("better", "worse", "unknown")) for seed in seeds]
        print(f"| {k} | " + " | ".join(cells) + f" | {sum(o == 'better' for _, o in outcome)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
