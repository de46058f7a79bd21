"""What a run's log says happened, for any searcher: its candidates with dev scores, its progress, its usage.

The engine never needs this (a resumed job replays its search); reports of runs that have no
``result.json`` yet (interrupted or still running) and progress plots read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimizer.run.events import CandidateAdded, ScoreRecorded, UsageSnapshot
from optimizer.run.racing import rank_key
from optimizer.run.scoring import ScoreRecord, summarize
from optimizer.types import Candidate

__all__ = ["candidates_from_log", "dev_trajectory", "usage_from_log"]


def _calls(snapshot: UsageSnapshot) -> int:
    return sum(int(u.get("calls", 0)) for u in snapshot.usage.values())


def _candidate_hashes(events: Sequence[Any]) -> dict[str, str]:
    """Prompt hash → candidate id, over the candidates recorded."""
    return {e.prompt_hash: e.id for e in events if isinstance(e, CandidateAdded) and e.prompt_hash}


def candidates_from_log(events: Sequence[Any], scoring: str = "accuracy") -> list[Candidate]:
    """Every candidate recorded, with its dev score over every dev example it was scored on, best first.

    Args:
        events: the run's events (``RunLog.replay``).
        scoring: the run's scoring (``accuracy`` or ``logprob``), for the order.

    Returns:
        Candidates, most dev examples first, then by score.
    """
    cands = {e.id: Candidate(id=e.id, text=e.text, origin=e.origin, parent=e.parent, round=e.round,
                             demos=tuple(e.demos) if e.demos is not None else None)
             for e in events if isinstance(e, CandidateAdded)}
    by_hash = _candidate_hashes(events)
    dev: dict[str, dict[str, ScoreRecord]] = {}
    for e in events:
        if isinstance(e, ScoreRecorded) and e.split == "dev" and e.prompt_hash in by_hash:
            rec = dev.setdefault(by_hash[e.prompt_hash], {}).setdefault(e.example, ScoreRecord())
            rec.acc = e.acc if e.acc is not None else rec.acc
            rec.lp = e.lp if e.lp is not None else rec.lp
    for cid, records in dev.items():
        cands[cid].dev = summarize(records)
    return sorted(cands.values(), key=lambda c: (c.dev.n, *rank_key(c.dev, scoring)), reverse=True)


def dev_trajectory(events: Sequence[Any]) -> list[tuple[int, float]]:
    """Best dev accuracy so far against provider calls so far, counting only candidates scored on the full dev set.

    The full dev set is the most dev examples any candidate reached in this run.

    Returns:
        ``(calls, best accuracy)`` points, one per change.
    """
    by_hash = _candidate_hashes(events)
    seen: dict[str, dict[str, float]] = {}
    for e in events:
        if isinstance(e, ScoreRecorded) and e.split == "dev" and e.acc is not None and e.prompt_hash in by_hash:
            seen.setdefault(e.prompt_hash, {})[e.example] = e.acc
    full = max((len(v) for v in seen.values()), default=0)
    if not full:
        return []
    accs: dict[str, dict[str, float]] = {}
    best: float | None = None
    points: list[tuple[int, float]] = []
    for e in events:
        if isinstance(e, ScoreRecorded) and e.split == "dev" and e.acc is not None and e.prompt_hash in by_hash:
            mine = accs.setdefault(e.prompt_hash, {})
            mine[e.example] = e.acc
            if len(mine) == full:
                mean = sum(mine.values()) / full
                best = mean if best is None else max(best, mean)
        elif isinstance(e, UsageSnapshot) and best is not None and (not points or points[-1][1] != best):
            points.append((_calls(e), best))
    return points


def usage_from_log(events: Sequence[Any]) -> tuple[int | None, int | None, float | None]:
    """Calls, tokens and elapsed seconds from the last usage snapshot (None when there is none)."""
    last = next((e for e in reversed(events) if isinstance(e, UsageSnapshot)), None)
    if last is None:
        return None, None, None
    tokens = sum(int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0)) for u in last.usage.values())
    return _calls(last), tokens, last.elapsed
