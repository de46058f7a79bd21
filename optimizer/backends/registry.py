"""Model strings to adapters. Each provider is imported only when chosen.

Forms:
    ``embedded`` (the default, SmolLM2-135M-Instruct), ``embedded:NAME`` (see ``apo models list``),
    ``hf:PATH`` (a local transformers causal-LM folder, a ``.gguf`` file, or a Hub name where
    the Hub is reachable), ``fake:NAME`` (the scriptable fake, for tests and dry runs).
"""

from __future__ import annotations

from optimizer.backends.base import Adapter
from optimizer.errors import UsageError

__all__ = ["DEFAULT_MODEL", "load_model", "parse_model"]

DEFAULT_MODEL = "embedded"
"""The model used when none is named."""

_FORMS = "embedded, embedded:NAME, hf:PATH_OR_NAME, fake:NAME"


def parse_model(spec: str) -> tuple[str, str]:
    """Split a model string into (provider, rest), checking the provider.

    Args:
        spec: a model string such as ``embedded`` or ``hf:/models/my-model``.

    Returns:
        The provider name and what follows its colon (empty for plain ``embedded``).
    """
    provider, _, rest = spec.partition(":")
    if provider == "embedded":
        return provider, rest
    if provider in {"hf", "fake"} and rest:
        return provider, rest
    if provider in {"openai", "anthropic"}:
        raise UsageError(f"model {spec!r}: the {provider} provider is not available in this version; use one of: {_FORMS}")
    raise UsageError(f"unknown model {spec!r}; model strings look like: {_FORMS}")


def load_model(spec: str) -> Adapter:
    """Build (or reuse, for local models) the adapter for a model string.

    Args:
        spec: the model string.

    Returns:
        An adapter; local models are loaded once per process and shared.
    """
    provider, rest = parse_model(spec)
    if provider == "fake":
        from optimizer.backends.fake import make_fake

        return make_fake(rest)
    from optimizer.backends.hf import load_hf

    if provider == "embedded":
        from optimizer.backends.embedded import DEFAULT_EMBEDDED, ensure

        path = ensure(rest or DEFAULT_EMBEDDED)
        adapter = load_hf(str(path))
        adapter.name = spec
        adapter.path = str(path)
        return adapter
    adapter = load_hf(rest)
    adapter.path = rest
    return adapter
