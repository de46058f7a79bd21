"""Model strings to adapters: each provider registers a factory that imports its SDK only when called.

Forms:
    ``embedded`` (the default, SmolLM2-135M-Instruct), ``embedded:NAME`` (see ``apo models list``;
    ``embedded:splade-tiny`` is a masked LM, for AutoPrompt), ``hf:PATH`` (a local transformers
    causal-LM or masked-LM folder, a ``.gguf`` file, or a Hub name where the Hub is reachable),
    ``openai:MODEL`` (the OpenAI API, or any OpenAI-compatible server with a base URL, through
    ``/chat/completions``), ``openai-completions:MODEL`` (the same through the raw-text
    ``/completions`` endpoint, for base models), ``anthropic:MODEL`` (the Anthropic Messages
    API), ``fake:NAME`` (the scriptable fake, for tests and dry runs).

As in lm-eval's model registry and inspect_ai's ``@modelapi``, a provider is a name and a
factory registered with :func:`model_provider`; looking a model string up (:func:`resolve`)
imports nothing, and only the chosen factory imports its SDK (``openai``, ``anthropic``, or
torch and transformers for local models). A factory receives a :class:`ModelRequest` and
returns an adapter whose ``name`` is the model string as written.

Example:
    ::

        @model_provider("echo", form="echo:NAME")
        def _echo(request: ModelRequest) -> Adapter:
            from my_package.echo import EchoAdapter   # imported only when an echo: model is loaded

            return EchoAdapter(name=request.spec)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from optimizer.errors import UsageError
from optimizer.models.base import Adapter

__all__ = ["API_PROVIDERS", "DEFAULT_MODEL", "ModelRequest", "Provider", "load_model", "model_provider",
           "parse_model", "providers", "resolve"]

DEFAULT_MODEL = "embedded"
"""The model used when none is named."""


@dataclass(frozen=True)
class ModelRequest:
    """What a provider's factory is asked to build."""

    spec: str
    """The model string as the user wrote it (the adapter's ``name``)."""
    provider: str
    """The provider name, before the first colon."""
    rest: str
    """What follows the colon (empty for plain ``embedded``)."""
    base_url: str | None = None
    """For OpenAI-compatible providers, the server to call (None: the provider's default)."""
    timeout: float = 120.0
    """For API providers, seconds to wait for one response before retrying."""


ModelFactory = Callable[[ModelRequest], Adapter]
"""Builds an adapter for a model request; imports its provider's SDK only when called."""


@dataclass(frozen=True)
class Provider:
    """A registered provider: how its model strings look and the factory that loads them."""

    name: str
    """The prefix before the colon, e.g. ``openai``."""
    factory: ModelFactory
    """Called by :func:`load_model`; the only place the provider's SDK is imported."""
    form: str
    """How its model strings look, for error messages, e.g. ``openai:MODEL``."""
    api: bool = False
    """Whether models are reached over HTTP (one request per call, concurrency-limited)."""
    bare: bool = False
    """Whether the provider name alone is a model string (``embedded``)."""


_PROVIDERS: dict[str, Provider] = {}


def model_provider(name: str, *, form: str, api: bool = False,
                   bare: bool = False) -> Callable[[ModelFactory], ModelFactory]:
    """Register the decorated function as the factory of provider ``name``.

    Args:
        name: the prefix of the provider's model strings (``NAME:...``).
        form: how its model strings look, listed when a model string is not understood.
        api: whether its models are reached over HTTP.
        bare: whether ``NAME`` alone (without a colon) is a model string.

    Returns:
        A decorator that registers the factory and returns it unchanged.
    """

    def register(factory: ModelFactory) -> ModelFactory:
        _PROVIDERS[name] = Provider(name=name, factory=factory, form=form, api=api, bare=bare)
        return factory

    return register


def providers() -> list[Provider]:
    """Every registered provider, in registration order.

    Returns:
        The providers.
    """
    return list(_PROVIDERS.values())


def _forms() -> str:
    return ", ".join(p.form for p in _PROVIDERS.values())


def parse_model(spec: str) -> tuple[str, str]:
    """Split a model string into (provider, rest), checking the provider.

    Args:
        spec: a model string such as ``embedded`` or ``hf:/models/my-model``.

    Returns:
        The provider name and what follows its colon (empty for plain ``embedded``).

    Raises:
        UsageError: the provider is unknown, or it needs something after the colon; the
            message lists the forms model strings take.
    """
    name, _, rest = spec.partition(":")
    provider = _PROVIDERS.get(name)
    if provider is None or not (rest or provider.bare):
        raise UsageError(f"unknown model {spec!r}; model strings look like: {_forms()}")
    return name, rest


def resolve(spec: str) -> Provider:
    """The provider that loads a model string, without loading anything or importing its SDK.

    Args:
        spec: a model string.

    Returns:
        The registered provider.

    Raises:
        UsageError: the model string is not understood (see :func:`parse_model`).
    """
    return _PROVIDERS[parse_model(spec)[0]]


def load_model(spec: str, *, base_url: str | None = None, timeout: float = 120.0) -> Adapter:
    """Build (or reuse, for local models) the adapter for a model string.

    Args:
        spec: the model string.
        base_url: for ``openai:`` models, an OpenAI-compatible server (default:
            ``$OPENAI_BASE_URL``, else the OpenAI API).
        timeout: for API models, seconds to wait for one response before retrying.

    Returns:
        An adapter named ``spec`` (fakes keep the name their factory gives them); local models
        are loaded once per process and shared.
    """
    provider, rest = parse_model(spec)
    request = ModelRequest(spec=spec, provider=provider, rest=rest, base_url=base_url, timeout=timeout)
    return _PROVIDERS[provider].factory(request)


# ----------------------------------------------------------------------------- built-in providers


@model_provider("embedded", form="embedded, embedded:NAME", bare=True)
def _embedded(request: ModelRequest) -> Adapter:
    from optimizer.models.embedded import DEFAULT_EMBEDDED, load_embedded

    return load_embedded(request.rest or DEFAULT_EMBEDDED, spec=request.spec)


@model_provider("hf", form="hf:PATH_OR_NAME")
def _hf(request: ModelRequest) -> Adapter:
    from optimizer.models.providers.mlm import is_masked_lm, load_mlm

    if is_masked_lm(request.rest):
        return load_mlm(request.rest, name=request.spec)
    from optimizer.models.providers.hf_loading import load_hf

    return load_hf(request.rest, name=request.spec)


@model_provider("openai", form="openai:MODEL", api=True)
def _openai(request: ModelRequest) -> Adapter:
    from optimizer.models.providers.openai_api import OpenAIAdapter

    return OpenAIAdapter(request.rest, base_url=request.base_url, mode="chat", timeout=request.timeout)


@model_provider("openai-completions", form="openai-completions:MODEL", api=True)
def _openai_completions(request: ModelRequest) -> Adapter:
    from optimizer.models.providers.openai_api import OpenAIAdapter

    return OpenAIAdapter(request.rest, base_url=request.base_url, mode="completions", timeout=request.timeout)


@model_provider("anthropic", form="anthropic:MODEL", api=True)
def _anthropic(request: ModelRequest) -> Adapter:
    from optimizer.models.providers.anthropic_api import AnthropicAdapter

    return AnthropicAdapter(request.rest, timeout=request.timeout)


@model_provider("fake", form="fake:NAME")
def _fake(request: ModelRequest) -> Adapter:
    from optimizer.models.providers.fake import make_fake

    return make_fake(request.rest)


API_PROVIDERS = frozenset(p.name for p in _PROVIDERS.values() if p.api)
"""The built-in providers reached over HTTP (one request per call, concurrency-limited)."""
