"""The one wrapper around every adapter: cache, accounting per role, and the budget.

Adapters only translate requests; :class:`ModelClient` decides what reaches them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Literal

from pydantic import BaseModel

from optimizer.config import Budget
from optimizer.errors import BudgetExceeded, CapabilityError, Interrupted
from optimizer.models.base import LOGPROB, WHITEBOX, Adapter, WhiteBoxAdapter
from optimizer.models.cache import ResponseCache, request_key
from optimizer.models.prices import cost
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["Ledger", "ModelClient", "ProviderLimit", "RoleUsage"]


class RoleUsage(BaseModel):
    """Usage of one role (proposer or target)."""

    calls: int = 0
    """Requests answered by the provider."""
    cache_hits: int = 0
    """Requests answered from the cache (free)."""
    prompt_tokens: int = 0
    """Prompt tokens over provider calls."""
    completion_tokens: int = 0
    """Generated tokens over provider calls."""
    seconds: float = 0.0
    """Time spent waiting for the provider."""
    cost_usd: float = 0.0
    """Estimated dollars over provider calls (0 for local models)."""

    def add(self, other: RoleUsage) -> None:
        """Add another usage record into this one."""
        for field in RoleUsage.model_fields:
            setattr(self, field, getattr(self, field) + getattr(other, field))


class Ledger:
    """Usage per role and the run's budget, shared by every client of one run.

    Args:
        budget: the limits; calls and tokens are hard caps, time applies while
            ``enforce_time`` is true (the search), not to the final test evaluation.
    """

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.roles: dict[str, RoleUsage] = {}
        self.started = time.monotonic()
        self.elapsed_before = 0.0
        self.enforce_time = True
        self.reserved_calls = 0
        """Calls of ``max_calls`` kept back from the search for confirming and testing its finalists."""
        self.stop_reason: str | None = None
        """Set by :meth:`request_stop`: every later model call raises :class:`~optimizer.errors.Interrupted`."""

    def request_stop(self, reason: str) -> None:
        """Refuse every model call from now on (calls already running finish; cached answers are still served).

        Safe to call from a signal handler: it only sets a field.
        """
        self.stop_reason = reason

    def role(self, name: str) -> RoleUsage:
        """The usage record of ``name``, created on first use."""
        return self.roles.setdefault(name, RoleUsage())

    @property
    def calls(self) -> int:
        """Provider calls over every role."""
        return sum(r.calls for r in self.roles.values())

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens over every role."""
        return sum(r.prompt_tokens + r.completion_tokens for r in self.roles.values())

    @property
    def cost(self) -> float:
        """Estimated dollars over every role."""
        return sum(r.cost_usd for r in self.roles.values())

    @property
    def elapsed(self) -> float:
        """Seconds of search so far, including earlier sessions of a resumed run."""
        return self.elapsed_before + time.monotonic() - self.started

    def check(self, new_calls: int) -> None:
        """Raise BudgetExceeded if ``new_calls`` more provider calls would break the budget (Interrupted once a stop
        was requested)."""
        if self.stop_reason is not None:
            raise Interrupted(self.stop_reason)
        b = self.budget
        if b.max_calls is not None and self.calls + new_calls > b.max_calls - self.reserved_calls:
            if self.reserved_calls:
                raise BudgetExceeded("calls", self.calls, b.max_calls,
                                     f"{self.reserved_calls} of them kept to confirm and test the finalists")
            raise BudgetExceeded("calls", self.calls, b.max_calls)
        if b.max_tokens is not None and self.tokens >= b.max_tokens:
            raise BudgetExceeded("tokens", self.tokens, b.max_tokens)
        if b.max_cost is not None and self.cost >= b.max_cost:
            raise BudgetExceeded("cost (USD)", round(self.cost, 6), b.max_cost)
        if self.enforce_time and b.max_seconds is not None and self.elapsed >= b.max_seconds:
            raise BudgetExceeded("seconds", round(self.elapsed, 1), b.max_seconds)

    def snapshot(self) -> dict[str, dict]:
        """Usage per role as plain data."""
        return {name: usage.model_dump() for name, usage in sorted(self.roles.items())}


class ProviderLimit:
    """At most ``size`` requests in flight to one provider, across every client sharing it.

    Args:
        size: the most concurrent requests.
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a concurrency limit must be at least 1")
        self.size = size
        self._semaphore = threading.BoundedSemaphore(size)

    def __enter__(self) -> ProviderLimit:
        self._semaphore.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()


class ModelClient:
    """Sends batches of requests to one adapter on behalf of one role.

    Args:
        adapter: the provider adapter.
        role: ``proposer`` or ``target``; usage is booked under it.
        ledger: shared usage and budget.
        cache: the response cache, or None to disable it.
        limiter: the concurrency limit shared by every client of one provider (proposer and
            target alike); with it, uncached requests are sent one per call from up to
            ``limiter.size`` threads at once. Without it the whole batch goes to the adapter in one call (local
            models batch on their own).
        price: (input, output) dollars per million tokens, for the cost estimate.
    """

    def __init__(self, adapter: Adapter, role: str, ledger: Ledger, cache: ResponseCache | None = None,
                 limiter: ProviderLimit | None = None, price: tuple[float, float] | None = None) -> None:
        self.adapter = adapter
        self.price = price
        self.role = role
        self.ledger = ledger
        self.cache = cache
        self.limiter = limiter

    @property
    def name(self) -> str:
        """The adapter's model id."""
        return self.adapter.name

    def supports(self, capability: str) -> bool:
        """Whether the adapter has ``capability``."""
        return capability in self.adapter.capabilities

    def whitebox(self) -> WhiteBoxAdapter:
        """The adapter's weights and tokenizer, for searchers that take gradients (AutoPrompt).

        Every pass run on them must be booked with :meth:`passes`.

        Raises:
            CapabilityError: the model is not a local white-box model.
        """
        if not self.supports(WHITEBOX):
            raise CapabilityError(f"model {self.name!r} gives no access to its weights; a local model is needed "
                                  "(embedded, embedded:splade-tiny or hf:PATH)")
        return self.adapter  # type: ignore[return-value]

    @contextmanager
    def passes(self, rows: int, tokens: int) -> Iterator[None]:
        """Book passes run directly on the white-box model: the budget is checked first, time and usage booked after.

        Example::

            with client.passes(len(batch), n_tokens):
                logits = model(input_ids=ids).logits

        Args:
            rows: examples passed through the model (a backward pass counts again); each is one call.
            tokens: input tokens over those rows.

        Raises:
            BudgetExceeded: the passes would break the budget (nothing runs then).
        """
        self.ledger.check(rows)
        start = time.monotonic()
        try:
            yield
        finally:
            usage = self.ledger.role(self.role)
            usage.calls += rows
            usage.prompt_tokens += tokens
            usage.seconds += time.monotonic() - start

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Answer every request, from the cache where possible."""
        return self._run("generate", requests, Generation, self.adapter.generate)

    def logprob(self, requests: list[LogprobRequest]) -> list[LogprobResult]:
        """Log-probability of every continuation, from the cache where possible."""
        if not self.supports(LOGPROB):
            raise CapabilityError(
                f"model {self.name!r} cannot return log-probabilities; use --scoring accuracy instead"
            )
        return self._run("logprob", requests, LogprobResult, self.adapter.logprob)  # type: ignore[attr-defined]

    def _run(self, kind: Literal["generate", "logprob"], requests, result_type, call):
        if not requests:
            return []
        usage = self.ledger.role(self.role)
        keys = [request_key(self.name, kind, r) for r in requests]
        found = self.cache.get_many(keys) if self.cache else {}
        results: list = [None] * len(requests)
        todo = []
        for i, key in enumerate(keys):
            if key in found:
                results[i] = result_type.model_validate({**found[key], "cached": True})
            else:
                todo.append(i)
        usage.cache_hits += len(requests) - len(todo)
        if todo:
            self.ledger.check(len(todo))
            start = time.monotonic()
            fresh = self._call(call, [requests[i] for i in todo])
            usage.seconds += time.monotonic() - start
            if len(fresh) != len(todo):
                raise RuntimeError(f"{self.name} answered {len(fresh)} of {len(todo)} requests")
            usage.calls += len(todo)
            rows: list[tuple[str, str, str, dict]] = []
            for i, result in zip(todo, fresh):
                results[i] = result
                usage.prompt_tokens += result.prompt_tokens
                usage.completion_tokens += getattr(result, "completion_tokens", 0)
                usage.cost_usd += cost(self.price, result.prompt_tokens, getattr(result, "completion_tokens", 0))
                rows.append((keys[i], self.name, kind, result.model_dump(exclude={"cached"})))
            if self.cache:
                self.cache.put_many(rows)
        return results

    def _call(self, call, requests: list) -> list:
        if self.limiter is None or len(requests) == 1:
            return call(requests)
        limiter = self.limiter

        def one(request):
            with limiter:
                return call([request])[0]

        workers = min(len(requests), limiter.size)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"apo-{self.role}") as pool:
            return list(pool.map(one, requests))
