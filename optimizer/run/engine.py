"""The one orchestrator: budget, evaluation order, persistence and progress for every searcher.

The CLI and the Python API both build a :class:`~optimizer.config.RunConfig` and call
:func:`run` (or :func:`resume`). A resumed job replays the same deterministic search: every
proposal and score already in ``events.jsonl`` is read back instead of asking a model again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.config import RunConfig
from optimizer.errors import BudgetExceeded, CapabilityError, Interrupted, RunAborted, UsageError
from optimizer.models.base import LOGPROB
from optimizer.models.cache import ResponseCache
from optimizer.models.client import Ledger, ModelClient, ProviderLimit, RoleUsage
from optimizer.models.prices import load_prices, price_of
from optimizer.models.registry import API_PROVIDERS, load_model, parse_model
from optimizer.run.context import ScorerSetup, ScoresOwnPrompts, SearchContext, Searcher, recorder
from optimizer.run.events import SCHEMA_VERSION, BudgetStopped, RunDone, SessionStarted, UsageSnapshot
from optimizer.run.finish import finish
from optimizer.run.interrupt import StopOnInterrupt
from optimizer.run.preflight import check_job, check_runs_folder, check_whitebox
from optimizer.run.progress import Reporter
from optimizer.run.provenance import data_changes, provenance
from optimizer.run.scoring import InstructionScorer, Journal, JournalledEvaluator, PromptScorer
from optimizer.run.store import RunStore
from optimizer.run.store import runs_dir as resolve_runs_dir
from optimizer.tasks.files import SplitName
from optimizer.tasks.metrics import resolve_metric
from optimizer.tasks.task import Task, load_task
from optimizer.tasks.templates import execution_template
from optimizer.types import Candidate, RunResult, Score

__all__ = [
    "Clients", "build_clients", "evaluate_prompt", "instruction_scorer", "lp_is_cheap", "make_searcher", "resume",
    "run",
]

Metric = Callable[[str, Sequence[str]], float]


def make_searcher(config: RunConfig) -> Searcher:
    """The built-in searcher named by ``config.searcher``, configured (see optimizer.search)."""
    from optimizer.search import BUILTIN_SEARCHERS, builtin_searcher

    searcher = builtin_searcher(config.searcher, config)
    if searcher is None:
        raise UsageError(f"searcher {config.searcher!r} is not built into apo ({', '.join(BUILTIN_SEARCHERS)}); a run "
                         "made by a searcher defined in Python resumes with resume(run_id, searcher=TheSearcher(...))")
    return searcher


def lp_is_cheap(config: RunConfig, target: ModelClient) -> bool:
    """Whether gold log-probabilities come cheaply enough to compute when not asked for.

    Local models score them in one forward pass. API models offer them only as an extra,
    billed greedy generation per example, so there they are computed only under
    ``--scoring logprob``.
    """
    return target.supports(LOGPROB) and parse_model(config.target)[0] not in API_PROVIDERS


@dataclass
class Clients:
    """The model clients of one run (or one evaluation), sharing a ledger, a cache and provider limits."""

    target: ModelClient
    """Runs prompts."""
    proposer: ModelClient
    """Writes prompts (the target's adapter when both are the same model)."""
    ledger: Ledger
    """Usage and budget."""


def build_clients(config: RunConfig, ledger: Ledger | None = None) -> Clients:
    """Load the target and proposer for ``config`` behind one ledger, cache and concurrency limit per provider.

    Args:
        config: the run configuration (models, base URL, timeout, concurrency, cache, prices, budget).
        ledger: an existing ledger (default: a new one with the config's budget).

    Returns:
        The clients.
    """
    ledger = ledger or Ledger(config.budget)
    proposer_spec = config.proposer or config.target
    prices = load_prices(config.prices)

    def adapter_for(spec: str) -> Any:
        price = price_of(spec, prices)
        if price is None and config.budget.max_cost is not None:
            raise UsageError(f"--max-cost needs a price for {spec!r}; add it to a JSON price file "
                             f'({{"{spec}": [input, output]}} dollars per million tokens) and pass --prices FILE')
        adapter = load_model(spec, base_url=config.base_url, timeout=config.request_timeout)
        check = getattr(adapter, "preflight", None)
        if check is not None:  # an API model: endpoint and key checked before the job writes anything
            check()
        return adapter

    target_adapter = adapter_for(config.target)
    proposer_adapter = target_adapter if proposer_spec == config.target else adapter_for(proposer_spec)
    cache = ResponseCache() if config.cache else None  # opened once the models are known to work
    limits: dict[str, ProviderLimit] = {}

    def client(spec: str, role: str, adapter: Any) -> ModelClient:
        provider = parse_model(spec)[0]
        limit = limits.setdefault(provider, ProviderLimit(config.concurrency)) if provider in API_PROVIDERS else None
        return ModelClient(adapter, role, ledger, cache, limiter=limit, price=price_of(spec, prices))

    target = client(config.target, "target", target_adapter)
    proposer = client(proposer_spec, "proposer", proposer_adapter)
    return Clients(target, proposer, ledger)


def instruction_scorer(
    config: RunConfig, task: Task, target: ModelClient, metric: Metric | None = None
) -> InstructionScorer:
    """The scorer of instructions: the run's execution template (seeded demonstrations) and metric."""
    template = execution_template(task, shots=config.shots, style=config.execution_style, seed=config.seed)
    return InstructionScorer(target, template, resolve_metric(metric or config.metric or task.metric, task.labels),
                             train=task.train)


def _check_capabilities(config: RunConfig, searcher: Searcher, target: ModelClient) -> None:
    missing = set(searcher.requires) - set(target.adapter.capabilities)
    if config.scoring == "logprob" and not target.supports(LOGPROB):
        missing |= {LOGPROB}
    if missing:
        raise CapabilityError(f"target {config.target!r} lacks {', '.join(sorted(missing))}, which "
                              f"{searcher.name} with --scoring {config.scoring} needs"
                              + ("; use --scoring accuracy" if LOGPROB in missing else ""))


def _restore(store: RunStore, journal: Journal, ledger: Ledger) -> list[Any]:
    """Read an existing run's log back: the journal, the usage so far; returns the events."""
    store.log.repair()
    events = list(store.log.replay())
    journal.replay(events)
    last = next((e for e in reversed(events) if isinstance(e, UsageSnapshot)), None)
    if last:
        for role, usage in last.usage.items():
            ledger.role(role).add(RoleUsage(**usage))
        ledger.elapsed_before = last.elapsed
    return events


def _set_incumbent(ctx: SearchContext, humans: list[Candidate], none_score: Score) -> None:
    """The incumbent: the user's initial prompt (raced), else the best human instruction on dev, else no instruction."""
    initial = ctx.config.initial_prompt
    if initial is not None:
        cand = ctx.set_incumbent(Candidate(id="init", text=initial, origin="initial" if initial.strip() else "none"))
        ctx.race([cand], round=-1)
        return
    scored = [h for h in humans if h.dev.n >= len(ctx.dev)]
    if scored:
        top = max(scored, key=lambda h: ctx.rank_key(h.dev))
        ctx.set_incumbent(Candidate(id="human", text=top.text, origin="human", parent=top.id, dev=top.dev))
    else:
        ctx.set_incumbent(Candidate(id="none", text="", origin="none", dev=none_score))


def _reserve(ctx: SearchContext, test_lp: bool) -> int:
    """Calls of a call budget kept from the search for confirming and testing (at most half the budget).

    An upper bound for the finalists and the incumbent on the confirmation examples and four prompts on test
    (answers, and gold log-probabilities where they are computed); calls answered from the cache cost nothing,
    so the search may end with some of it unspent.
    """
    max_calls = ctx.config.budget.max_calls
    if max_calls is None:
        return 0
    test = len(ctx.task.test[: ctx.config.test_limit] if ctx.config.test_limit else ctx.task.test)
    need = (ctx.config.selection.finalists + 1) * len(ctx.confirm) + 4 * test * (2 if test_lp else 1)
    return min(need, max_calls // 2)


def _task(config: RunConfig, task: Task | None) -> Task:
    """The run's task (loaded unless given), its train split cut to ``config.train_limit``."""
    task = task or load_task(config.task, data_dir=config.data_dir, seed=config.seed)
    return task.with_train_limit(config.train_limit, config.seed)


def run(config: RunConfig, *, runs_dir: Any = None, reporter: Reporter | None = None, task: Task | None = None,
        metric: Metric | None = None, searcher: Searcher | None = None, store: RunStore | None = None,
        handle_interrupt: bool = False, run_id: str | None = None) -> RunResult:
    """Run (or continue) an optimization job and write its result.

    Args:
        config: the job.
        runs_dir: the runs folder (default ``$APO_RUNS_DIR`` or ``./runs``).
        reporter: progress display (default: silent).
        task: an already-loaded task (the Python API passes one it built in memory).
        metric: a Python metric callable overriding the task's (not stored; resume uses the task's).
        searcher: a searcher object (default: the built-in one ``config.searcher`` names); one defined
            outside apo implements :class:`~optimizer.run.context.Searcher`.
        store: an existing run to continue (used by :func:`resume`).
        handle_interrupt: handle SIGINT (main thread only): a first Ctrl-C stops at the next model call and
            writes a result with status ``interrupted`` from what was scored; a second raises RunAborted.
        run_id: the new run's id (default: ``<date>-<time>-<task>-<random>``); a sweep names its runs up front.

    Returns:
        The result, also written to ``runs/<id>/result.json``.

    Raises:
        RunLockedError: another process holds the run's lock.
        RunAborted: a KeyboardInterrupt stopped the run once its folder existed (``run_id`` names it).
    """
    reporter = reporter or Reporter()
    if searcher is not None and searcher.name != config.searcher:
        config = config.model_copy(update={"searcher": searcher.name})
    searcher = searcher or make_searcher(config)
    check_whitebox(config, searcher)
    resuming = store is not None
    if not resuming:
        check_runs_folder(resolve_runs_dir(runs_dir))
    task = _task(config, task)
    if not resuming:
        check_job(config, task)
    try:
        reporter.status(f"loading models ({config.target})")
        clients = build_clients(config)
        _check_capabilities(config, searcher, clients.target)
        if not isinstance(searcher, ScoresOwnPrompts):
            instruction_scorer(config, task, clients.target, metric)  # metric and template checked before the folder
        store = store or RunStore.create(runs_dir, task.name, run_id)
        store.lock()  # before anything is appended; released by store.close() on every way out
        guard: AbstractContextManager[Any] = nullcontext()
        if handle_interrupt:
            guard = StopOnInterrupt(clients.ledger, store.id)
        with guard:
            return _session(config, task, searcher, clients, store, reporter, resuming, metric)
    except KeyboardInterrupt as exc:
        if store is None or isinstance(exc, RunAborted):
            raise
        raise RunAborted(store.id) from None
    finally:
        if store is not None:
            store.close()
        reporter.done()


def _session(config: RunConfig, task: Task, searcher: Searcher, clients: Clients, store: RunStore,
             reporter: Reporter, resuming: bool, metric: Metric | None) -> RunResult:
    """One process's work on a locked run: restore, search, finish, write the result."""
    target, ledger = clients.target, clients.ledger
    journal = Journal()
    reporter.started(store.id, str(store.path), resuming)
    recorded = _restore(store, journal, ledger) if resuming else []
    if not resuming:
        store.write_config({"config": config.model_dump(mode="json"), "run_id": store.id,
                            "provenance": provenance(config, task, target.adapter, clients.proposer.adapter)})
    store.log.append(SessionStarted(resume=resuming, schema_version=SCHEMA_VERSION, run_id=store.run_id))

    record = recorder(store, ledger)
    scorer: PromptScorer
    if isinstance(searcher, ScoresOwnPrompts):
        scorer = searcher.build_scorer(ScorerSetup(config, task, target, recorded, record, store.path))
    else:
        scorer = instruction_scorer(config, task, target, metric)
    evaluator = JournalledEvaluator(scorer, journal, record, batch_size=config.score_batch_size)
    want_lp = config.scoring == "logprob" or (config.tiebreak_logprob and lp_is_cheap(config, target))
    fixed = tuple(getattr(getattr(scorer, "template", None), "demos", ()))  # a trained searcher's baselines too
    ctx = SearchContext(config, task, store, ledger, target, clients.proposer, evaluator, journal, reporter,
                        recorded, want_lp, fixed_demos=fixed)
    reporter.start_scoring(evaluator, ledger)
    started = time.monotonic()
    stop_reason = None
    interrupted = False
    none_score = Score()
    humans = [Candidate(id=f"h{i:02d}", text=t, origin="human") for i, t in enumerate(dict.fromkeys(task.instructions))]
    try:
        reporter.status("scoring baselines on dev")
        none_score = ctx.evaluate([""], ctx.dev, "dev")[""]
        ctx.race(humans, round=-1)
        _set_incumbent(ctx, humans, none_score)
        ledger.reserved_calls = _reserve(ctx, lp_is_cheap(config, target) or config.scoring == "logprob")
        searcher.run(ctx)
    except BudgetExceeded as exc:
        stop_reason = str(exc)
        store.log.append(BudgetStopped(reason=stop_reason))
    except Interrupted as exc:  # a first Ctrl-C: no new model calls from here; what is recorded is kept
        stop_reason, interrupted = str(exc), True
        reporter.status("interrupted: writing a partial result from what was scored")
    search_s = time.monotonic() - started
    ledger.enforce_time = False
    ledger.reserved_calls = 0
    result = finish(ctx, evaluator, searcher.name, none_score, humans, stop_reason,
                    test_lp=config.scoring == "logprob" or lp_is_cheap(config, target), interrupted=interrupted)
    result.timings = {"search_s": round(search_s, 2), "test_s": round(time.monotonic() - started - search_s, 2),
                      "total_s": round(ledger.elapsed, 2)}
    store.write_result(result.model_dump(mode="json"))
    store.log.append(RunDone(status=result.status))
    return result


def resume(run_id: str, *, runs_dir: Any = None, reporter: Reporter | None = None,
           searcher: Searcher | None = None, task: Task | None = None, allow_changed_data: bool = False,
           handle_interrupt: bool = False) -> RunResult:
    """Continue a job that stopped (even by SIGKILL) without recomputing any recorded score.

    Nothing is trusted: the run's lock must be free, its log readable to the end (a torn last line aside) and
    its own (the run id in its session events), and the task's data the same as when the run began.

    Args:
        run_id: the run's id (folder name under the runs folder) or its path.
        runs_dir: the runs folder.
        reporter: progress display.
        searcher: the searcher object, for a run made by one defined outside apo.
        task: the task, for a run of a task built in memory (others are loaded again by name).
        allow_changed_data: continue even though the task's examples changed since the run began (with a
            warning); recorded scores are kept by example id.
        handle_interrupt: see :func:`run`.

    Returns:
        The finished result.

    Raises:
        RunLockedError: another process is working on the run (the message names its PID).
        RunLogError: a damaged line in the middle of the log (``apo runs repair`` fixes it), or a log that
            belongs to another run.
        UsageError: the task's data changed and ``allow_changed_data`` is false.
    """
    reporter = reporter or Reporter()
    store = RunStore.open(runs_dir, run_id)
    store.lock()
    try:
        stored_all = store.read_config()
        stored = dict(stored_all["config"])
        stored.setdefault("selection", {"confirm_limit": 0})  # a run made before confirmation resumes as it began
        config = RunConfig.model_validate(stored)
        store.check_log()
        task = _task(config, task)
        changes = data_changes((stored_all.get("provenance") or {}).get("task") or {}, task)
        if changes:
            what = f"the data of task {task.name!r} changed since run {store.id} began ({'; '.join(changes)})"
            if not allow_changed_data:
                raise UsageError(f"{what}: its recorded scores belong to the old examples. Restore the old data, start "
                                 f"a new run (`apo optimize`), or continue anyway, keeping the recorded scores by "
                                 f"example id, with `apo resume {store.id} --allow-changed-data`")
            reporter.warning(f"{what}; continuing because of --allow-changed-data: scores recorded before the change "
                             "are kept by example id, so the result mixes old and new data")
        return run(config, runs_dir=runs_dir, reporter=reporter, store=store, searcher=searcher, task=task,
                   handle_interrupt=handle_interrupt)
    except KeyboardInterrupt as exc:
        if isinstance(exc, RunAborted):
            raise
        raise RunAborted(store.id) from None
    finally:
        store.close()


def evaluate_prompt(config: RunConfig, prompt: str, *, split: SplitName = "test", limit: int | None = None,
                    task: Task | None = None, metric: Metric | None = None, adapter: Path | None = None,
                    ) -> tuple[Task, list[Any], dict[str, Any]]:
    """Score one instruction on a split exactly as a run with ``config`` would (same clients, template and metric).

    Gold log-probabilities are computed where a run would compute them for free (local models) or
    when ``config.scoring`` is ``logprob``. Nothing is written to a run folder; the response
    cache is used as in a run.

    Args:
        config: the models, template, metric, seed and call settings (base URL, timeout, concurrency).
        prompt: the instruction ("" for none).
        split: ``train``, ``dev`` or ``test``.
        limit: score only the first N examples.
        task: an already-loaded task.
        metric: a Python metric callable overriding the task's.
        adapter: a trained searcher's checkpoint folder: ``prompt`` is its candidate text, scored through the
            adapter (``config.searcher`` names the method).

    Returns:
        The task, the examples scored and ``{example id: ScoreRecord}``.
    """
    task = _task(config, task)
    examples = list(task.split(split))
    if limit is not None and not 1 <= limit <= len(examples):
        raise UsageError(f"--limit {limit}: the {split} split of task {task.name!r} has {len(examples)} examples; "
                         f"fix: give --limit between 1 and {len(examples)}, or leave it out")
    if config.shots is not None and config.shots > len(task.train):
        raise UsageError(f"--shots {config.shots}: the task {task.name!r} has {len(task.train)} training examples "
                         f"to draw demonstrations from; fix: give --shots {len(task.train)} or less")
    examples = examples[:limit] if limit is not None else examples
    clients = build_clients(config)
    scorer: PromptScorer = instruction_scorer(config, task, clients.target, metric)
    if adapter is not None:
        searcher = make_searcher(config)
        assert isinstance(searcher, ScoresOwnPrompts)
        scorer = searcher.build_scorer(ScorerSetup(config, task, clients.target, [], lambda *events: None))
        scorer.register(prompt, adapter)  # type: ignore[attr-defined]
    evaluator = JournalledEvaluator(scorer, Journal(), lambda *events: None, batch_size=config.score_batch_size)
    want_lp = config.scoring == "logprob" or lp_is_cheap(config, clients.target)
    raw = evaluator.score([prompt], examples, split, accuracy=True, logprob=want_lp)
    return task, examples, raw[prompt]
