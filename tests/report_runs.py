"""Run folders written directly, with fixed numbers, for the leaderboard tests and snapshots."""

from __future__ import annotations

import json
from pathlib import Path


def _json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _prompt(name, text, acc, test, cand=None):
    return {"name": name, "text": text, "candidate": cand, "dev": {"acc": acc, "lp": -1.0, "n": 10},
            "test": None if test is None else {"acc": sum(test) / len(test), "lp": -1.0, "n": len(test)},
            "test_acc": test or [], "test_lp": [-1.0] * len(test or [])}


def write_run(root: Path, run_id: str, *, task: str, target: str = "fake:a", searcher: str = "ape", seed: int = 0,
              best_text: str = "Shout the input.", dev: float = 0.8, best: list[float] | None = None,
              none: list[float] | None = None, human: list[float] | None = None, status: str = "complete",
              cost: float | None = 0.0, finished: bool = True, candidates: list[dict] | None = None,
              calls: int = 100, tokens: int = 2000, total_s: float | None = 12.5, rounds: int = 1) -> Path:
    """A run folder like the engine writes: config.json, events.jsonl and (when finished) result.json.

    ``cost=None`` leaves cost_usd out of result.json (runs written before costs were recorded).
    """
    path = root / run_id
    path.mkdir(parents=True)
    config = {"task": task, "searcher": searcher, "target": target, "proposer": None, "seed": seed,
              "scoring": "accuracy", "dev_size": 10, "ape": {"rounds": rounds}}
    _json(path / "config.json", {"schema": 1, "config": config, "run_id": run_id,
                                 "provenance": {"task": {"name": task}}})
    candidates = candidates or [
        {"id": "c000", "text": "Repeat the input.", "origin": "forward", "parent": None, "round": 0,
         "dev": {"acc": dev - 0.3, "lp": -2.0, "n": 10}},
        {"id": "c001", "text": best_text, "origin": "variation", "parent": "c000", "round": 1,
         "dev": {"acc": dev, "lp": -1.0, "n": 10}},
        {"id": "c002", "text": "Say nothing.", "origin": "forward", "parent": None, "round": 0,
         "dev": {"acc": 0.0, "lp": -9.0, "n": 5}},
    ]
    events = [{"t": 1.0, "type": "session", "resume": False}]
    for c in candidates:
        events.append({"t": 1.0, "type": "candidate", **{k: v for k, v in c.items() if k != "dev"}, "ih": c["id"]})
    by_id = {c["id"]: c for c in candidates}

    def scores(cid: str, examples: range) -> list[dict]:  # schema-1 score events matching the dev score
        c = by_id.get(cid)
        if c is None:
            return []
        n, acc, lp = c["dev"]["n"], c["dev"]["acc"], c["dev"]["lp"]
        ones = round(acc * n)
        return [{"t": 1.0, "type": "score", "split": "dev", "ih": cid, "ex": str(i), "acc": float(i < ones), "lp": lp}
                for i in examples if i < n]

    events += [
        {"t": 1.0, "type": "usage", "usage": {"target": {"calls": calls // 4, "prompt_tokens": tokens // 4,
                                                         "completion_tokens": 0}}, "elapsed": 3.0},
        *[e for c in candidates if c["round"] == 0 for e in scores(c["id"], range(5))],
        {"t": 1.0, "type": "rung", "round": 0, "n": 5, "scores": {c["id"]: [c["dev"]["acc"], c["dev"]["lp"]]
                                                                  for c in candidates if c["round"] == 0}},
        *scores("c000", range(5, 10)),
        {"t": 1.0, "type": "rung", "round": 0, "n": 10, "scores": {"c000": [dev - 0.3, -2.0]}},
        {"t": 1.0, "type": "usage", "usage": {"target": {"calls": calls // 2, "prompt_tokens": tokens // 2,
                                                         "completion_tokens": 0}}, "elapsed": 6.0},
        *scores("c001", range(10)),
        {"t": 1.0, "type": "rung", "round": 1, "n": 10, "scores": {"c001": [dev, -1.0], "c000": [dev - 0.3, -2.0]}},
        {"t": 1.0, "type": "usage", "usage": {"target": {"calls": calls // 2, "prompt_tokens": tokens // 2,
                                                         "completion_tokens": 0}}, "elapsed": 6.0},
    ]
    with open(path / "events.jsonl", "w", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(e) + "\n" for e in events))
    if not finished:
        return path
    result = {
        "schema": 1, "run_id": run_id, "run_dir": str(path), "task": task, "searcher": searcher, "target": target,
        "proposer": target, "seed": seed, "status": status,
        "stop_reason": "budget reached: calls used 100 of 100" if status == "partial" else None,
        "best": _prompt("best", best_text, dev, best, "c001"),
        "baselines": [p for p in (_prompt("no_instruction", "", 0.1, none) if none is not None else None,
                                  _prompt("best_human", "Write it in capitals.", 0.5, human, "h00")
                                  if human is not None else None) if p],
        "human": [], "candidates": candidates, "usage": {}, "calls": calls, "tokens": tokens,
        "timings": {} if total_s is None else {"search_s": total_s - 2, "test_s": 2.0, "total_s": total_s},
    }
    if cost is not None:
        result["cost_usd"] = cost
    _json(path / "result.json", result)
    return path


def seeded(n: int, ones: int, offset: int = 0) -> list[float]:
    """``n`` scores with ``ones`` correct ones spread deterministically."""
    return [1.0 if (i * 7 + offset) % n < ones else 0.0 for i in range(n)]


def snapshot_runs(root: Path) -> Path:
    """Two tasks, three searchers/targets, three seeds of one configuration, a partial, an interrupted
    and an old run without cost."""
    for seed, ones in ((0, 16), (1, 14), (2, 15)):
        write_run(root, f"r-alpha-a-s{seed}", task="alpha", seed=seed, dev=0.7 + seed / 20,
                  best=seeded(20, ones, seed), none=seeded(20, 6), human=seeded(20, 12, 1))
    write_run(root, "r-alpha-b", task="alpha", target="fake:b", searcher="autoprompt", best_text="zx qv trigger",
              dev=0.6, best=seeded(20, 17), none=seeded(20, 6), human=seeded(20, 12, 1), cost=0.0123)
    write_run(root, "r-beta-a-old", task="beta", dev=0.5, best=seeded(20, 9), none=seeded(20, 9), human=None,
              cost=None, total_s=None)
    write_run(root, "r-beta-a-partial", task="beta", seed=1, dev=0.4, best=None, none=None, human=None,
              status="partial")
    write_run(root, "r-beta-b-killed", task="beta", target="fake:b", dev=0.3, finished=False)
    return root
