"""The one orchestrator: budget, evaluation order, persistence and progress for every searcher.

The CLI and the Python API both build a :class:`~optimizer.config.RunConfig` and call
:func:`run` (or :func:`resume`). A resumed job replays the same deterministic search: every
proposal and score already in ``events.jsonl`` is read back instead of asking a model again.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence

from optimizer.models.base import CHAT, LOGPROB
from optimizer.models.cache import ResponseCache, request_key
from optimizer.models.client import Ledger, ModelClient, ProviderLimit, RoleUsage
from optimizer.models.registry import API_PROVIDERS, load_model, parse_model
from optimizer.config import RunConfig
from optimizer.models.prices import load_prices, price_of
from optimizer.errors import BudgetExceeded, CapabilityError, UsageError
from optimizer.run.scoring import Evaluator, Journal, instruction_hash, summarize
from optimizer.tasks.metrics import resolve_metric
from optimizer.run.progress import Reporter
from optimizer.run.provenance import provenance
from optimizer.search.ape.search import APESearch
from optimizer.run.store import RunStore
from optimizer.tasks.task import Task, load_task
from optimizer.tasks.templates import clean_instruction, execution_template, normalize_instruction
from optimizer.types import Candidate, Score, GenerateRequest, RunResult, ScoredPrompt

__all__ = ["SearchContext", "resume", "run"]


class SearchContext:
    """What a searcher sees: the task, proposal and racing services, and the candidates so far."""

    def __init__(self, config: RunConfig, task: Task, store: RunStore, journal: Journal, ledger: Ledger,
                 target: ModelClient, proposer: ModelClient, reporter: Reporter, metric=None) -> None:
        self.config = config
        self.task = task
        self.seed = config.seed
        self.store = store
        self.journal = journal
        self.ledger = ledger
        self.target = target
        self.proposer = proposer
        self.reporter = reporter
        self.candidates: dict[str, Candidate] = {}
        self._by_norm: dict[str, str] = {}
        self._recorded_ids = {e["id"] for e in store.events() if e.get("type") == "candidate"}
        dev = list(task.dev)
        self.rng("dev-order").shuffle(dev)
        self.dev = dev[: config.dev_limit] if config.dev_limit else dev
        self.template = execution_template(task, shots=config.shots, style=config.execution_style, seed=config.seed)
        self.evaluator = Evaluator(target, self.template, resolve_metric(metric or config.metric or task.metric, task.labels),
                                   journal, self.record, batch_size=config.score_batch_size)
        self.want_lp = config.scoring == "logprob" or (config.tiebreak_logprob and _lp_is_cheap(config, target))
        style = config.ape.proposal_style
        self.proposal_style = ("chat" if proposer.supports(CHAT) else "completion") if style == "auto" else style

    def rng(self, purpose: str) -> random.Random:
        """A random generator seeded by the run seed and ``purpose`` (independent streams)."""
        return random.Random(f"{self.seed}:{purpose}")

    def record(self, *events: dict) -> None:
        """Append events together with a usage snapshot, in one write."""
        usage = {"type": "usage", "usage": self.ledger.snapshot(), "elapsed": round(self.ledger.elapsed, 3)}
        self.store.append(*events, usage)

    # -- proposals ---------------------------------------------------------------------------
    def propose(self, requests: Sequence[GenerateRequest], *, origin: str, parents: Sequence[str | None],
                round: int) -> list[Candidate]:
        """Ask the proposer (or the journal) for instructions; return the new, de-duplicated ones."""
        keys = [request_key(self.proposer.name, "generate", r) for r in requests]
        missing = [i for i, k in enumerate(keys) if k not in self.journal.proposals]
        if missing:
            self.reporter.status(f"round {round}: proposing {len(missing)} instructions")
            answers = self.proposer.generate([requests[i] for i in missing])
            events = []
            for i, answer in zip(missing, answers):
                self.journal.proposals[keys[i]] = answer.text
                events.append({"type": "proposal", "key": keys[i], "raw": answer.text, "origin": origin,
                               "parent": parents[i], "round": round})
            self.record(*events)
        fresh = []
        for key, parent in zip(keys, parents):
            text = clean_instruction(self.journal.proposals[key], forward=origin == "forward",
                                     max_chars=self.config.ape.max_instruction_chars)
            cand = self.add(text, origin=origin, parent=parent, round=round)
            if cand is not None:
                fresh.append(cand)
        return fresh

    def add(self, text: str, *, origin: str, parent: str | None = None, round: int = 0) -> Candidate | None:
        """Register a candidate unless it is empty or a duplicate (after normalisation)."""
        norm = normalize_instruction(text)
        if not norm or norm in self._by_norm:
            return None
        cand = Candidate(id=f"c{len(self.candidates):03d}", text=text, origin=origin, parent=parent, round=round)
        self.candidates[cand.id] = cand
        self._by_norm[norm] = cand.id
        if cand.id not in self._recorded_ids:
            self.record({"type": "candidate", **cand.model_dump(exclude={"dev"}), "ih": instruction_hash(text)})
        return cand

    # -- racing ------------------------------------------------------------------------------
    def rank_key(self, score: Score) -> tuple[float, float]:
        """Sort key of a dev score: the chosen score first, the other as tie-breaker."""
        acc = score.acc if score.acc is not None else -math.inf
        lp = score.lp if score.lp is not None else -math.inf
        return (lp, acc) if self.config.scoring == "logprob" else (acc, lp)

    def evaluate(self, texts: Sequence[str], examples, split: str) -> dict[str, Score]:
        """Score instructions on examples with the run's scoring (journalled) and summarise each."""
        raw = self.evaluator.score(texts, examples, split, accuracy=self.config.scoring == "accuracy",
                                   logprob=self.want_lp)
        return {text: summarize(records) for text, records in raw.items()}

    def race(self, cands: Sequence[Candidate], *, round: int) -> list[Candidate]:
        """Successive halving over dev examples; returns the survivors ranked, best first.

        All candidates are scored on the first few dev examples; the best 1/eta go on to eta
        times as many, until the full dev set. Every candidate keeps the score of the most
        examples it was evaluated on.
        """
        alive = list({c.id: c for c in cands}.values())
        n = min(self.config.racing.min_examples, len(self.dev))
        while alive:
            self.reporter.status(f"round {round}: racing {len(alive)} candidates on {n} dev examples")
            scores = self.evaluate([c.text for c in alive], self.dev[:n], "dev")
            for c in alive:
                if scores[c.text].n >= c.dev.n:
                    c.dev = scores[c.text]
            alive.sort(key=lambda c: self.rank_key(c.dev), reverse=True)
            self.store.append({"type": "rung", "round": round, "n": n,
                               "scores": {c.id: [c.dev.acc, c.dev.lp] for c in alive}})
            if n >= len(self.dev):
                break
            alive = alive[: max(1, math.ceil(len(alive) / self.config.racing.eta))]
            n = min(n * self.config.racing.eta, len(self.dev))
        return alive

    def ranked(self) -> list[Candidate]:
        """Every searched candidate, best first (most dev examples first among equals)."""
        return sorted(self.candidates.values(), key=lambda c: (c.dev.n, *self.rank_key(c.dev)), reverse=True)


def _lp_is_cheap(config: RunConfig, target: ModelClient) -> bool:
    """Whether gold log-probabilities come for free enough to compute when not asked for.

    Local models score them in one forward pass. API models offer them only as an extra,
    billed greedy generation per example, so there they are computed only under
    ``--scoring logprob``.
    """
    return target.supports(LOGPROB) and parse_model(config.target)[0] not in API_PROVIDERS


def _searcher(config: RunConfig):
    if config.searcher == "ape":
        return APESearch(config.ape)
    if config.searcher == "autoprompt":
        from optimizer.search.autoprompt.search import AutoPromptSearch

        return AutoPromptSearch(config.autoprompt)
    raise CapabilityError(f"unknown searcher {config.searcher!r}")


def _check_whitebox(config: RunConfig) -> None:
    """Refuse, before loading anything, a model that cannot give AutoPrompt gradients."""
    provider = parse_model(config.target)[0]
    if provider in API_PROVIDERS or provider == "fake":
        raise UsageError(f"--searcher autoprompt needs gradients through a local model, and {config.target!r} is "
                         f"{'an API model' if provider in API_PROVIDERS else 'the fake model'}; use a masked LM such as "
                         "--model embedded:splade-tiny or hf:/path/to/bert, or a local causal LM such as --model "
                         "embedded (SmolLM2)")


def _clients(config: RunConfig, ledger: Ledger) -> tuple[ModelClient, ModelClient]:
    cache = ResponseCache() if config.cache else None
    proposer_spec = config.proposer or config.target
    limits: dict[str, ProviderLimit] = {}
    prices = load_prices(config.prices)

    def client(spec: str, role: str, adapter=None) -> ModelClient:
        provider = parse_model(spec)[0]
        price = price_of(spec, prices)
        if price is None and config.budget.max_cost is not None:
            raise UsageError(f"--max-cost needs a price for {spec!r}; add it to a JSON price file "
                             f'({{"{spec}": [input, output]}} dollars per million tokens) and pass --prices FILE')
        limit = limits.setdefault(provider, ProviderLimit(config.concurrency)) if provider in API_PROVIDERS else None
        adapter = adapter or load_model(spec, base_url=config.base_url, timeout=config.request_timeout)
        return ModelClient(adapter, role, ledger, cache, limiter=limit, price=price)

    target = client(config.target, "target")
    same = proposer_spec == config.target
    return target, client(proposer_spec, "proposer", target.adapter if same else None)


def run(config: RunConfig, *, runs_dir=None, reporter: Reporter | None = None, task: Task | None = None,
        store: RunStore | None = None, metric=None) -> RunResult:
    """Run (or continue) an optimization job and write its result.

    Args:
        config: the job.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).
        reporter: progress display (default: silent).
        task: an already-loaded task (the Python API passes one it built in memory).
        store: an existing run to continue (used by :func:`resume`).
        metric: a Python metric callable overriding the task's (not stored; resume uses the task's).

    Returns:
        The result, also written to ``runs/<id>/result.json``.
    """
    reporter = reporter or Reporter()
    if config.searcher == "autoprompt":
        _check_whitebox(config)
    task = task or load_task(config.task, data_dir=config.data_dir, seed=config.seed)
    resuming = store is not None
    journal = Journal()
    ledger = Ledger(config.budget)
    reporter.status(f"loading models ({config.target})")
    target, proposer = _clients(config, ledger)
    searcher = _searcher(config)
    missing = searcher.requires - target.adapter.capabilities
    if config.scoring == "logprob" and not target.supports(LOGPROB):
        missing |= {LOGPROB}
    if missing:
        raise CapabilityError(f"target {config.target!r} lacks {', '.join(sorted(missing))}, which "
                              f"{config.searcher} with --scoring {config.scoring} needs"
                              + ("; use --scoring accuracy" if LOGPROB in missing else ""))
    store = store or RunStore.create(runs_dir, task.name)
    reporter.started(store.id, str(store.path), resuming)
    if resuming:
        store.repair()
        events = list(store.events())
        journal.replay(events)
        last = next((e for e in reversed(events) if e.get("type") == "usage"), None)
        if last:
            for role, usage in last["usage"].items():
                ledger.role(role).add(RoleUsage(**usage))
            ledger.elapsed_before = last.get("elapsed", 0.0)
    if not resuming:
        store.write_config({"config": config.model_dump(mode="json"), "run_id": store.id,
                            "provenance": provenance(config, task, target.adapter, proposer.adapter)})
    store.append({"type": "session", "resume": resuming})
    ctx = SearchContext(config, task, store, journal, ledger, target, proposer, reporter, metric)
    if hasattr(searcher, "prepare"):  # e.g. AutoPrompt scores cloze prompts with its own evaluator
        searcher.prepare(ctx)
    reporter.start_scoring(ctx.evaluator)
    started = time.monotonic()
    stop_reason = None
    none_score = Score()
    humans = [Candidate(id=f"h{i:02d}", text=t, origin="human") for i, t in enumerate(dict.fromkeys(task.instructions))]
    try:
        reporter.status("scoring baselines on dev")
        none_score = ctx.evaluate([""], ctx.dev, "dev")[""]
        ctx.race(humans, round=-1)
        searcher.run(ctx)
    except BudgetExceeded as exc:
        stop_reason = str(exc)
        store.append({"type": "budget_stop", "reason": stop_reason})
    search_s = time.monotonic() - started
    ledger.enforce_time = False
    result = _finish(ctx, none_score, humans, stop_reason, reporter)
    result.timings = {"search_s": round(search_s, 2), "test_s": round(time.monotonic() - started - search_s, 2),
                      "total_s": round(ledger.elapsed, 2)}
    store.write_result(result.model_dump(mode="json"))
    store.append({"type": "done", "status": result.status})
    store.close()
    reporter.done()
    return result


def _finish(ctx: SearchContext, none_score: Score, human: list[Candidate], stop_reason,
            reporter: Reporter) -> RunResult:
    config, task = ctx.config, ctx.task
    full = [c for c in ctx.ranked() if c.dev.n >= len(ctx.dev)]
    best = full[0] if full else (ctx.ranked()[0] if ctx.candidates else None)
    prompts: list[ScoredPrompt] = []
    if best is not None:
        prompts.append(ScoredPrompt(name="best", text=best.text, candidate=best.id, dev=best.dev))
    if none_score.n:
        prompts.append(ScoredPrompt(name="no_instruction", text="", dev=none_score))
    scored_humans = [h for h in human if h.dev.n >= len(ctx.dev)]
    if scored_humans:
        top = max(scored_humans, key=lambda h: ctx.rank_key(h.dev))
        prompts.append(ScoredPrompt(name="best_human", text=top.text, candidate=top.id, dev=top.dev))
    test = task.test[: config.test_limit] if config.test_limit else task.test
    try:
        reporter.status(f"scoring {len(prompts)} prompts on {len(test)} test examples")
        raw = ctx.evaluator.score([p.text for p in prompts], test, "test", accuracy=True,
                                  logprob=ctx.config.scoring == "logprob" or _lp_is_cheap(ctx.config, ctx.target))
        for p in prompts:
            records = [raw[p.text][ex.id] for ex in test]
            p.test = summarize(raw[p.text])
            p.test_acc = [r.acc for r in records if r.acc is not None]
            p.test_lp = [r.lp for r in records if r.lp is not None]
    except BudgetExceeded as exc:
        stop_reason = stop_reason or str(exc)
        ctx.store.append({"type": "budget_stop", "reason": str(exc), "phase": "test"})
    return RunResult(
        run_id=ctx.store.id, run_dir=str(ctx.store.path), task=task.name, searcher=config.searcher,
        target=config.target, proposer=config.proposer or config.target, seed=config.seed,
        status="partial" if stop_reason else "complete", stop_reason=stop_reason,
        best=prompts[0] if best is not None else None,
        baselines=[p for p in prompts if p.name != "best"], human=human, candidates=ctx.ranked(),
        usage=ctx.ledger.snapshot(), calls=ctx.ledger.calls, tokens=ctx.ledger.tokens,
        cost_usd=round(ctx.ledger.cost, 6),
    )


def resume(run_id: str, *, runs_dir=None, reporter: Reporter | None = None) -> RunResult:
    """Continue a job that stopped (even by SIGKILL) without recomputing any recorded score.

    Args:
        run_id: the run's id (folder name under the runs folder) or its path.
        runs_dir: the runs folder.
        reporter: progress display.

    Returns:
        The finished result.
    """
    store = RunStore.open(runs_dir, run_id)
    config = RunConfig.model_validate(store.read_config()["config"])
    return run(config, runs_dir=runs_dir, reporter=reporter, store=store)
