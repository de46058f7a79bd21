"""The model client: cache keys per sample, budget before calls, concurrency under a shared limit."""

from __future__ import annotations

import threading
import time

import pytest

from optimizer.config import Budget
from optimizer.errors import BudgetExceeded
from optimizer.models.cache import ResponseCache
from optimizer.models.client import Ledger, ModelClient, ProviderLimit
from optimizer.models.providers.fake import FakeModel
from optimizer.types import GenerateRequest


class InFlight(FakeModel):
    """A fake that records how many calls overlap."""

    def __init__(self) -> None:
        super().__init__("fake:inflight", answer=lambda p: p.upper())
        self.now = 0
        self.peak = 0
        self.lock = threading.Lock()

    def generate(self, requests):
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(0.02)
        try:
            return super().generate(requests)
        finally:
            with self.lock:
                self.now -= 1


def requests(n: int) -> list[GenerateRequest]:
    return [GenerateRequest(prompt=f"prompt {i}") for i in range(n)]


def test_shared_limit_bounds_concurrency_across_roles_and_keeps_order():
    fake, ledger, limit = InFlight(), Ledger(), ProviderLimit(3)
    target = ModelClient(fake, "target", ledger, limiter=limit)
    proposer = ModelClient(fake, "proposer", ledger, limiter=limit)
    results: dict[str, list] = {}
    threads = [threading.Thread(target=lambda c=c: results.__setitem__(c.role, c.generate(requests(12))))
               for c in (target, proposer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 < fake.peak <= 3
    for role in ("target", "proposer"):
        assert [g.text for g in results[role]] == [f"PROMPT {i}" for i in range(12)]
    assert ledger.calls == 24 and ledger.role("target").calls == 12


def test_without_limit_the_batch_goes_in_one_call():
    fake = InFlight()
    ModelClient(fake, "target", Ledger()).generate(requests(5))
    assert fake.batches == [5]


def test_cache_distinguishes_samples_and_costs_nothing(tmp_path):
    fake, ledger = InFlight(), Ledger()
    client = ModelClient(fake, "target", ledger, cache=ResponseCache(tmp_path / "c.sqlite"))
    a = GenerateRequest(prompt="p", temperature=0.7, sample_index=0)
    b = GenerateRequest(prompt="p", temperature=0.7, sample_index=1)
    client.generate([a, b])
    assert ledger.calls == 2
    again = client.generate([a, b])
    assert ledger.calls == 2 and all(g.cached for g in again) and ledger.role("target").cache_hits == 2


def test_budget_refuses_a_batch_that_would_exceed_it():
    fake = InFlight()
    client = ModelClient(fake, "target", Ledger(Budget(max_calls=4)))
    client.generate(requests(3))
    with pytest.raises(BudgetExceeded):
        client.generate(requests(2))
    assert len(fake.calls) == 3
