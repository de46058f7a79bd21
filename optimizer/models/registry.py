"""Model strings to adapters. Each provider is imported only when chosen.

Forms:
    ``embedded`` (the default, SmolLM2-135M-Instruct), ``embedded:NAME`` (see ``apo models list``;
    ``embedded:splade-tiny`` is a masked LM, for AutoPrompt),
    ``hf:PATH`` (a local transformers causal-LM or masked-LM folder, a ``.gguf`` file, or a Hub name where
    the Hub is reachable), ``openai:MODEL`` (the OpenAI API, or any OpenAI-compatible server
    with a base URL, through ``/chat/completions``), ``openai-completions:MODEL`` (the same
    through the raw-text ``/completions`` endpoint, for base models), ``anthropic:MODEL`` (the Anthropic Messages API), ``fake:NAME`` (the
    scriptable fake, for tests and dry runs).
"""

from __future__ import annotations

from optimizer.models.base import Adapter
from optimizer.errors import UsageError

__all__ = ["API_PROVIDERS", "DEFAULT_MODEL", "load_model", "parse_model"]

DEFAULT_MODEL = "embedded"
"""The model used when none is named."""

_FORMS = "embedded, embedded:NAME, hf:PATH_OR_NAME, openai:MODEL, openai-completions:MODEL, anthropic:MODEL, fake:NAME"
API_PROVIDERS = frozenset({"openai", "openai-completions", "anthropic"})
"""Providers reached over HTTP (one request per call, concurrency-limited)."""


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
    if provider in {"hf", "fake", *API_PROVIDERS} and rest:
        return provider, rest
    raise UsageError(f"unknown model {spec!r}; model strings look like: {_FORMS}")


def load_model(spec: str, *, base_url: str | None = None, timeout: float = 120.0) -> Adapter:
    """Build (or reuse, for local models) the adapter for a model string.

    Args:
        spec: the model string.
        base_url: for ``openai:`` models, an OpenAI-compatible server (default:
            ``$OPENAI_BASE_URL``, else the OpenAI API).
        timeout: for API models, seconds to wait for one response before retrying.

    Returns:
        An adapter; local models are loaded once per process and shared.
    """
    provider, rest = parse_model(spec)
    if provider == "fake":
        from optimizer.models.providers.fake import make_fake

        return make_fake(rest)
    if provider in ("openai", "openai-completions"):
        from optimizer.models.providers.openai_api import OpenAIAdapter

        mode = "chat" if provider == "openai" else "completions"
        return OpenAIAdapter(rest, base_url=base_url, mode=mode, timeout=timeout)
    if provider == "anthropic":
        from optimizer.models.providers.anthropic_api import AnthropicAdapter

        return AnthropicAdapter(rest, timeout=timeout)
    if provider == "embedded":
        from optimizer.models.embedded import DEFAULT_EMBEDDED, load_embedded

        return load_embedded(rest or DEFAULT_EMBEDDED, spec=spec)
    from optimizer.models.providers.hf import load_hf
    from optimizer.models.providers.mlm import is_masked_lm, load_mlm

    if is_masked_lm(rest):
        return load_mlm(rest, name=spec)
    return load_hf(rest)
