"""Protocols that provider adapters implement.

An adapter only translates typed requests into calls to one provider; caching, retries,
accounting and the budget belong to :class:`optimizer.models.client.ModelClient`.

Capabilities are separate: every adapter generates text; some also return the
log-probability of a given continuation (``"logprob"``); white-box models expose their
tokenizer, embeddings and forward/backward passes (``"whitebox"``, used by AutoPrompt).

Example:
    A minimal adapter that echoes its prompt::

        class Echo:
            name = "echo"
            capabilities = frozenset({"generate"})

            def generate(self, requests):
                return [Generation(text=r.prompt or "") for r in requests]
"""

from __future__ import annotations

import threading
from typing import Any, Literal, Protocol, runtime_checkable

from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["Adapter", "LogprobAdapter", "WhiteBoxAdapter", "GENERATE", "LOGPROB", "CHAT", "WHITEBOX"]

GENERATE = "generate"
"""Capability: text generation from a raw prompt."""
CHAT = "chat"
"""Capability: the model has a chat template / chat endpoint."""
LOGPROB = "logprob"
"""Capability: log-probability of a given continuation."""
WHITEBOX = "whitebox"
"""Capability: tokenizer, input embeddings, forward and backward passes."""


@runtime_checkable
class Adapter(Protocol):
    """A model that generates text for batches of requests."""

    name: str
    """The model id as the user wrote it (``embedded``, ``hf:/path``, ``fake:…``)."""
    capabilities: frozenset[str]
    """What this model can do; a subset of GENERATE, CHAT, LOGPROB, WHITEBOX."""

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Answer each request, in order. A batch may be processed together."""
        ...


@runtime_checkable
class LogprobAdapter(Adapter, Protocol):
    """A model that can also score a given continuation."""

    def logprob(self, requests: list[LogprobRequest]) -> list[LogprobResult]:
        """Log-probability of each continuation given its context, in order."""
        ...


@runtime_checkable
class WhiteBoxAdapter(Adapter, Protocol):
    """A local model whose weights searchers may read and differentiate through (capability WHITEBOX).

    Searchers reach it only through :meth:`optimizer.models.client.ModelClient.whitebox`, and
    book every pass they run with :meth:`~optimizer.models.client.ModelClient.passes`, so
    that the budget and the usage figures cover gradient searches as well.
    """

    model: Any
    """The transformers model (``get_input_embeddings()``, forward and backward)."""
    tokenizer: Any
    """Its tokenizer."""
    lock: threading.Lock
    """Held around every pass, as the adapter itself does (the model may be shared)."""
    kind: Literal["masked", "causal"]
    """``masked`` (the prediction is read at the mask token) or ``causal`` (the next token)."""
