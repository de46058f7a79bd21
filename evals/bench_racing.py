"""Racing benchmark: how many evaluations does each racing rule take to reach the exhaustive winner?

For each task it runs the default job once with *exhaustive* racing (every candidate of every race scored on every
dev example: ``race_min_examples`` at least the dev size), so the journal holds each candidate's score on each dev
example. Each race of that job (the demos searcher has two: its demonstration sets, then reorderings of the best)
is then raced again, offline, under each rule through the same :func:`optimizer.run.racing.successive_halving` the
engine calls, reading the journalled scores in the run's racing order (:func:`optimizer.run.context.dev_splits`):

- ``halving``: successive halving (the default);
- ``bounds``: a rung drops only the candidates a paired test calls worse than the leader (delta over the race);
- ``both``: the bounds' drops, then halving;
- ``halving-prob`` (offline only, no engine rule): halving whose rungs before the last rank by the mean of accuracy
  plus the gold answer's probability (exp of its log-probability), a smoother signal on few examples; the last
  rung ranks as the engine does.

Per race it reports the field, the evaluations (candidate x example pairs scored; a candidate's earlier examples
are not scored again) against exhaustive scoring's, and whether the rule's winner is the exhaustive winner (the
best accuracy on all dev examples, log-probability breaking ties) or ties it on accuracy. It also reports how much
of the field is tied with the exhaustive winner on the evidence of all dev examples (a paired test cannot call it
worse), and whether each rule's winner is worse on that evidence: where most of the field is tied, which of them
scores best on the dev split is chance. Written to OUT.json and OUT.md.

Usage (the committed results were made with the commands in evals/README.md):

    OMP_NUM_THREADS=1 python evals/bench_racing.py --data-dir ../shared/data/instruction_induction --tasks induction \\
        --out evals/results/racing_smollm2
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sys
from pathlib import Path
from typing import Any

from optimizer import RunConfig, load_task, optimize
from optimizer.run.context import dev_splits
from optimizer.run.events import CandidateAdded, RungCompleted, ScoreRecorded, parse_event
from optimizer.run.provenance import git_commit
from optimizer.run.racing import rank_key, successive_halving, worse_on_evidence
from optimizer.settings import RacingConfig
from optimizer.tasks.task import list_tasks
from optimizer.types import Candidate, Score

RULES = ["halving", "bounds", "both", "halving-prob"]
ENGINE_RULES = RULES[:3]
"""The rules a job can run (``race_rule``); the others are replayed here only."""
EXHAUSTIVE = 10**6
TIED_ALPHA = 0.05
"""Level of the paired test (:func:`worse_on_evidence`, on all dev examples) that calls a candidate worse than the
exhaustive winner; the others are tied with it on the evidence of the whole dev split."""
"""``race_min_examples`` of the exhaustive job: more than any dev split, so the first rung is all of it."""
RESAMPLES = 2000
"""Bootstrap resamples of the dev examples for :func:`winner_again`."""


Scores = dict[tuple[str, str], tuple[float | None, float | None]]


def journal(run_dir: str) -> tuple[list[list[str]], dict[str, Candidate], dict[str, str], Scores]:
    """A run's races (candidate ids of each round's field, in order), its candidates, their prompt hashes, and the
    dev scores (accuracy, log-probability) by (prompt hash, example id)."""
    events = [parse_event(line) for line in Path(run_dir, "events.jsonl").read_text().splitlines() if line.strip()]
    cands: dict[str, Candidate] = {}
    hashes: dict[str, str] = {}
    scores: Scores = {}
    races: dict[int, list[str]] = {}
    for e in events:
        if isinstance(e, CandidateAdded):
            cands[e.id] = Candidate(id=e.id, text=e.text, origin=e.origin, parent=e.parent, round=e.round,
                                    demos=tuple(e.demos) if e.demos is not None else None)
            hashes[e.id] = e.prompt_hash
        elif isinstance(e, ScoreRecorded) and e.split == "dev":
            acc, lp = scores.get((e.prompt_hash, e.example), (None, None))
            scores[(e.prompt_hash, e.example)] = (e.acc if e.acc is not None else acc, e.lp if e.lp is not None else lp)
        elif isinstance(e, RungCompleted) and e.round >= 0:
            races.setdefault(e.round, [cid for cid in e.scores if cid in cands])  # its first rung: the whole field
    return [races[r] for r in sorted(races)], cands, hashes, scores


def replay(field: list[Candidate], table: dict[str, list[tuple[float, float]]], rule: str, *, min_examples: int,
           eta: int, delta: float) -> tuple[Candidate, int]:
    """Race ``field`` under ``rule`` on the table of per-example (accuracy, log-probability): winner, evaluations."""
    n_dev = len(next(iter(table.values())))
    reached: dict[str, int] = {}

    def evaluate(alive: list[Candidate], n: int) -> dict[str, Score]:
        out = {}
        for c in alive:
            reached[c.id] = max(reached.get(c.id, 0), n)
            rows = table[c.id][:n]
            smooth = rule == "halving-prob" and n < n_dev
            acc = sum(a + (math.exp(max(lp, -60.0)) if smooth else 0.0) for a, lp in rows)
            out[c.key] = Score(acc=acc / n, lp=sum(lp for _, lp in rows) / n, n=n)
        return out

    fresh = [c.model_copy(update={"dev": Score()}) for c in field]
    alive = successive_halving(fresh, n_dev, evaluate=evaluate, rank=rank_key, min_examples=min_examples, eta=eta,
                               rule=rule if rule in ENGINE_RULES else "halving", delta=delta,
                               per_example=lambda c: [a for a, _ in table[c.id][:c.dev.n]])
    return alive[0], sum(reached.values())


def winner_again(field: list[Candidate], table: dict[str, list[tuple[float, float]]], winner: str,
                 resamples: int = RESAMPLES, seed: int = 0) -> float:
    """The share of bootstrap resamples of the dev examples (as many, drawn with replacement) on which ``winner``
    is again the exhaustive winner (the best accuracy, log-probability breaking ties, the field's order after
    that): how far the winner of this dev split would be the winner of another of its size."""
    rng = random.Random(seed)
    n = len(table[winner])
    hits = 0
    for _ in range(resamples):
        rows = [rng.randrange(n) for _ in range(n)]
        best = max(field, key=lambda c: (sum(table[c.id][i][0] for i in rows), sum(table[c.id][i][1] for i in rows)))
        hits += best.id == winner
    return hits / resamples


def finished_run(runs_dir: Path, name: str, seed: int) -> str:
    """The newest finished exhaustive run of task ``name`` with ``seed`` in ``runs_dir`` (for ``--rebuild``)."""
    for run in sorted(runs_dir.glob(f"*-{name}-*"), reverse=True):
        if not (run / "result.json").is_file():
            continue
        config = json.loads((run / "config.json").read_text())["config"]
        if config.get("seed") == seed and config.get("racing", {}).get("min_examples") == EXHAUSTIVE:
            return str(run)
    raise SystemExit(f"--rebuild: no finished exhaustive run of {name} (seed {seed}) in {runs_dir}")


def run_task(name: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """The exhaustive job on one task, then every race replayed under every rule."""
    task = load_task(name, data_dir=args.data_dir, seed=args.seed)
    if args.rebuild:
        run_dir = finished_run(Path(args.runs_dir), name, args.seed)
    else:
        options = json.loads(args.set) if args.set else {}
        run_dir = optimize(task, target=args.target, seed=args.seed, runs_dir=args.runs_dir,
                           race_min_examples=EXHAUSTIVE, **options).run_dir
    config = RunConfig.model_validate(json.loads(Path(run_dir, "config.json").read_text())["config"])
    dev = dev_splits(task, config)[1]
    races, cands, hashes, scores = journal(run_dir)
    defaults = RacingConfig()
    rows = []
    for round_, ids in enumerate(races):
        table = {cid: [(a or 0.0, lp if lp is not None else -1e9)
                       for a, lp in (scores[(hashes[cid], ex.id)] for ex in dev)] for cid in ids}
        field = [cands[cid] for cid in ids]
        best = max(field, key=lambda c: (sum(a for a, _ in table[c.id]), sum(lp for _, lp in table[c.id])))
        best_acc = sum(a for a, _ in table[best.id]) / len(dev)
        worse = [c.id for c in field if worse_on_evidence([a for a, _ in table[best.id]], [a for a, _ in table[c.id]],
                                                          TIED_ALPHA)]
        row: dict[str, Any] = {"task": name, "race": round_, "field": len(field), "dev": len(dev),
                               "exhaustive_evaluations": len(field) * len(dev), "winner": best.id,
                               "winner_acc": round(best_acc, 4), "run_id": Path(run_dir).name,
                               "tied_with_winner": len(field) - len(worse),
                               "winner_again": round(winner_again(field, table, best.id), 3)}
        for rule in RULES:
            won, cost = replay(field, table, rule, min_examples=defaults.min_examples, eta=defaults.eta,
                               delta=args.delta)
            acc = sum(a for a, _ in table[won.id]) / len(dev)
            row[rule] = {"evaluations": cost, "share": round(cost / (len(field) * len(dev)), 4), "winner": won.id,
                         "same_winner": won.id == best.id, "ties_winner": acc == best_acc, "winner_acc": round(acc, 4),
                         "worse_on_evidence": won.id in worse}
        for m, eta in args.schedules:  # halving again at other schedules (first rung's examples, eta)
            won, cost = replay(field, table, "halving", min_examples=m, eta=eta, delta=args.delta)
            row.setdefault("schedules", {})[f"{m}:{eta}"] = {
                "evaluations": cost, "share": round(cost / (len(field) * len(dev)), 4), "winner": won.id,
                "same_winner": won.id == best.id}
        rows.append(row)
        print(f"   race {round_}: field {len(field)} x {len(dev)} dev, exhaustive winner {best.id} ({best_acc:.2f}); "
              + "; ".join(f"{r} {row[r]['share']:.0%} {'same' if row[r]['same_winner'] else row[r]['winner']}"
                          for r in RULES), file=sys.stderr, flush=True)
    return rows


def markdown(report: dict[str, Any]) -> str:
    """The report: one row per race, then per rule the races where it reached the winner within a third."""
    rows = report["rows"]
    lines = [f"# Racing: evaluations to the exhaustive winner ({report['target']}, searcher {report['searcher']})", "",
             f"Machine: {report['machine']}; apo commit {report['git_commit']}; seed {report['seed']}; delta "
             f"{report['delta']}; racing min_examples {report['min_examples']}, eta {report['eta']}.", "",
             "| task | race | field x dev | winner (acc) | tied with it | winner again | " + " | ".join(RULES) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(RULES)]
    for r in rows:
        cells = [f"{r[k]['share']:.0%} " + ("same" if r[k]["same_winner"] else
                                             f"{r[k]['winner']} ({r[k]['winner_acc']:.2f}"
                                             + (", tie)" if r[k]["ties_winner"] else ")")) for k in RULES]
        lines.append(f"| {r['task']} | {r['race']} | {r['field']} x {r['dev']} | {r['winner']} ({r['winner_acc']:.2f})"
                     f" | {r.get('tied_with_winner', '')} | {_share(r.get('winner_again'))} | "
                     + " | ".join(cells) + " |")
    firsts = [r for r in rows if r["race"] == 0]
    lines += ["", "Tied with it: the candidates of the field (the winner among them) that a paired one-sided test at "
                  f"{TIED_ALPHA} on all dev examples (the engine's: exact McNemar on 0/1 scores, Hoeffding's bound "
                  "otherwise) cannot call worse than the exhaustive winner. Winner again: the share of "
                  f"{RESAMPLES} bootstrap resamples of the dev examples (as many, with replacement) on which the "
                  "exhaustive winner wins again, i.e. how far it would be the winner of another dev split of the "
                  "same size.", "",
              "| rule | evaluations / exhaustive (all races) | first races: same winner | same or tied | "
              "same winner within a third of the evaluations | first races: mean accuracy below the winner's | "
              "first races: winner worse than the exhaustive winner on all dev examples |",
              "|---|---|---|---|---|---|---|"]
    total = sum(r["exhaustive_evaluations"] for r in rows)
    for k in RULES:
        spent = sum(r[k]["evaluations"] for r in rows)
        same = sum(r[k]["same_winner"] for r in firsts)
        tied = sum(r[k]["same_winner"] or r[k]["ties_winner"] for r in firsts)
        third = sum(r[k]["same_winner"] and r[k]["share"] <= 1 / 3 for r in firsts)
        below = sum(r["winner_acc"] - r[k]["winner_acc"] for r in firsts) / max(1, len(firsts))
        worse = sum(bool(r[k].get("worse_on_evidence")) for r in firsts)
        lines.append(f"| {k} | {spent / total:.0%} | {same}/{len(firsts)} | {tied}/{len(firsts)} | "
                     f"{third}/{len(firsts)} | {below:.3f} | {worse}/{len(firsts)} |")
    schedules = sorted({k for r in firsts for k in r.get("schedules", {})}, key=lambda k: tuple(map(int, k.split(":"))))
    if schedules:
        lines += ["", "Halving at other schedules (first rung's examples : eta), first races:", "",
                  "| schedule | evaluations / exhaustive | same winner | "
                  "same winner within a third of the evaluations |",
                  "|---|---|---|---|"]
        for k in schedules:
            pairs = [(r["exhaustive_evaluations"], r["schedules"][k]) for r in firsts if k in r.get("schedules", {})]
            spent = sum(x["evaluations"] for _, x in pairs) / sum(n for n, _ in pairs)
            runs = [x for _, x in pairs]
            third = sum(x["same_winner"] and x["share"] <= 1 / 3 for x in runs)
            lines.append(f"| {k} | {spent:.0%} | {sum(x['same_winner'] for x in runs)}/{len(runs)} | "
                         f"{third}/{len(runs)} |")
    return "\n".join(lines) + "\n"


def _share(x: float | None) -> str:
    return "" if x is None else f"{x:.0%}"


def _schedules(text: str) -> list[tuple[int, int]]:
    """``M:ETA,M:ETA`` (first rung's examples, eta) as pairs; raises ArgumentTypeError for anything else."""
    out = []
    for part in (p for p in text.split(",") if p.strip()):
        try:
            m, eta = (int(x) for x in part.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r} is not M:ETA (e.g. 5:2)") from None
        if m < 1 or eta < 2:
            raise argparse.ArgumentTypeError(f"{part!r}: the first rung needs at least 1 example and eta at least 2")
        out.append((m, eta))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", required=True, help="comma-separated tasks, or 'induction' (every instruction-induction "
                                                  "task of --data-dir)")
    ap.add_argument("--data-dir", help="folder of external tasks (instruction-induction)")
    ap.add_argument("--target", default="embedded", help="the target (and, by default, proposer) model")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--delta", type=float, default=RacingConfig().delta,
                    help="error probability of the paired tests over a race (default: %(default)s)")
    ap.add_argument("--runs-dir", default="runs/bench_racing", help="run folders and response cache "
                                                                    "(default: %(default)s)")
    ap.add_argument("--set", help="more job options as JSON (default: none)")
    ap.add_argument("--rebuild", action="store_true", help="replay the finished runs in --runs-dir instead of "
                                                           "running the jobs (no model call)")
    ap.add_argument("--schedules", type=_schedules, default=[], metavar="M:ETA,...",
                    help="also replay halving at these schedules (first rung's examples : eta), e.g. 4:2,6:2,5:3; "
                         "the report adds a table of them (default: none)")
    ap.add_argument("--out", required=True, help="OUT.json and OUT.md are written")
    args = ap.parse_args(argv)
    names = [t for t in args.tasks.split(",") if t]
    if names == ["induction"]:
        names = [i.name for i in list_tasks(args.data_dir) if i.kind == "instruction_induction"]
        if not names:
            ap.error(f"--tasks induction: no instruction-induction task in --data-dir {args.data_dir!r}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        rows += run_task(name, args)
        report = {"command": "python " + " ".join([sys.argv[0], *(argv if argv is not None else sys.argv[1:])]),
                  "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
                  "git_commit": git_commit(), "target": args.target, "seed": args.seed, "delta": args.delta,
                  "searcher": str(RunConfig.model_fields["searcher"].default),
                  "min_examples": RacingConfig().min_examples, "eta": RacingConfig().eta, "rows": rows}
        out.with_suffix(".json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
        out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
