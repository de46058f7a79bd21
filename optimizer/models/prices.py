"""Prices of API models, for cost estimates and the ``--max-cost`` budget.

Prices are US dollars per million tokens (input, output), as the providers list them for
standard (not batch, not cached) requests. They change: override or extend them with a JSON
file ``{"openai:MODEL": [input, output], …}`` named by ``--prices FILE`` or ``$APO_PRICES``.
Local models (``embedded``, ``hf:``, ``fake:``) cost nothing.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from optimizer.errors import UsageError

__all__ = ["PRICES", "cost", "load_prices", "price_of"]

PRICES: dict[str, tuple[float, float]] = {
    "openai:gpt-4o-mini": (0.15, 0.60),
    "openai:gpt-4o": (2.50, 10.00),
    "openai:gpt-4.1": (2.00, 8.00),
    "openai:gpt-4.1-mini": (0.40, 1.60),
    "openai:gpt-4.1-nano": (0.10, 0.40),
}
"""Built-in prices (USD per million input and output tokens)."""

LOCAL = ("embedded", "hf:", "fake:")


def load_prices(path: str | Path | None = None) -> dict[str, tuple[float, float]]:
    """The built-in prices updated from ``path`` (or ``$APO_PRICES``) when given.

    Args:
        path: a JSON file mapping model strings to ``[input, output]`` dollars per million tokens.

    Returns:
        The merged table.
    """
    table = dict(PRICES)
    path = path or os.environ.get("APO_PRICES")
    if not path:
        return table
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(
            f"price file {path}: {exc}; expected JSON like {{\"openai:gpt-4o-mini\": [0.15, 0.6]}}"
        ) from exc
    if not isinstance(data, dict):
        raise UsageError(f"price file {path}: expected an object mapping model strings to [input, output]")
    for model, pair in data.items():
        is_pair = isinstance(pair, list) and len(pair) == 2
        if not (is_pair and all(isinstance(v, (int, float)) and v >= 0 for v in pair)):
            raise UsageError(f"price file {path}, {model!r}: expected [input, output] dollars per million tokens")
        table[model] = (float(pair[0]), float(pair[1]))
    return table


def price_of(model: str, table: dict[str, tuple[float, float]]) -> tuple[float, float] | None:
    """(input, output) dollars per million tokens; (0, 0) for local models; None when unknown."""
    if model.startswith(LOCAL):
        return (0.0, 0.0)
    return table.get(model)


def cost(price: tuple[float, float] | None, prompt_tokens: int, completion_tokens: int) -> float:
    """Dollars for the given tokens (0 when the price is unknown)."""
    if price is None:
        return 0.0
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1e6
