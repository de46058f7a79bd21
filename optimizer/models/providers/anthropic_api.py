"""Adapter for Anthropic's Messages API through the official SDK.

System messages go to the ``system`` parameter; a completion-style prompt becomes one user
message. Anthropic returns no log-probabilities, so this model can only be scored by accuracy.

Example:
    ::

        model = AnthropicAdapter("claude-3-5-haiku-latest")
        [answer] = model.generate([GenerateRequest(prompt="Say hi.", max_tokens=8)])
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from optimizer.errors import CapabilityError, ModelUnavailable, UsageError
from optimizer.models.base import CHAT, GENERATE
from optimizer.models.retry import ProviderError, RetryingCaller, credentials, preflight
from optimizer.models.stops import cut_at_stop
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["AnthropicAdapter"]

KEY_ENV = "ANTHROPIC_API_KEY"
"""The environment variable holding the Anthropic API key."""
BASE_URL_ENV = "ANTHROPIC_BASE_URL"
"""The environment variable naming another Messages API endpoint."""
MAX_TEMPERATURE = 1.0
"""Anthropic accepts temperatures from 0 to 1; higher ones are clamped."""


def _accepts(fn: Callable[..., Any], keyword: str) -> bool:
    try:
        return keyword in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True


class AnthropicAdapter:
    """Generates text with one Anthropic model.

    Args:
        model: the model id (``claude-3-5-haiku-latest``).
        base_url: another endpoint; defaults to ``$ANTHROPIC_BASE_URL``, then to Anthropic.
        api_key: the key; defaults to ``$ANTHROPIC_API_KEY``. Required for Anthropic's own
            endpoint; a custom endpoint gets a dummy key when none is set.
        client: a ready ``anthropic.Anthropic`` client (then ``base_url``, ``api_key`` and
            ``http_client`` are ignored).
        http_client: an ``httpx.Client`` for the SDK (proxies, tests with a mock transport).
        attempts: the most calls per request, retries included.
        max_wait: the longest wait between retries, in seconds.
        timeout: seconds to wait for one HTTP response before it counts as timed out (and
            is retried like a 5xx).
        sleep: the function that waits between retries (default ``time.sleep``).

    Raises:
        UsageError: when no key is set for Anthropic's own endpoint.
        ModelUnavailable: when the ``anthropic`` package is not installed.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        http_client: Any = None,
        attempts: int = 6,
        max_wait: float = 60,
        timeout: float = 120,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.model = model
        self.timeout = timeout
        self.name = f"anthropic:{model}"
        self.capabilities = frozenset({GENERATE, CHAT})
        self._call = RetryingCaller(self.name, KEY_ENV, attempts, max_wait, sleep, url_env=BASE_URL_ENV)
        self._client = client if client is not None else self._make_client(base_url, api_key, http_client)
        self._call.endpoint = str(getattr(self._client, "base_url", "") or "") or None
        self._takes_temperature = _accepts(self._client.messages.create, "temperature")

    def preflight(self) -> None:
        """Check the endpoint and key with a model listing (see :func:`~optimizer.models.retry.preflight`)."""
        preflight(self._call, lambda: self._client.with_options(timeout=min(self.timeout, 15)).models.list(limit=1))

    def _make_client(self, base_url: str | None, api_key: str | None, http_client: Any) -> Any:
        try:
            import anthropic
        except ImportError as exc:  # pragma: no cover - anthropic is a declared dependency
            raise ModelUnavailable(f"{self.name} needs the anthropic package: pip install anthropic") from exc
        key, url = credentials(self.name, KEY_ENV, BASE_URL_ENV, api_key, base_url)
        return anthropic.Anthropic(api_key=key, base_url=url, max_retries=0, http_client=http_client,
                                   timeout=self.timeout)

    def _payload(self, request: GenerateRequest) -> dict[str, Any]:
        system: list[str] = []
        messages: list[dict[str, str]] = []
        if request.messages is not None:
            for m in request.messages:
                if m.role == "system":
                    system.append(m.content)
                else:
                    messages.append({"role": m.role, "content": m.content})
        else:
            messages.append({"role": "user", "content": request.prompt or ""})
        if not messages:
            raise UsageError(f"{self.name}: a chat request needs at least one user message besides the system prompt")
        payload: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": messages,
        }
        temperature = min(request.temperature, MAX_TEMPERATURE)
        if self._takes_temperature:
            payload["temperature"] = temperature
        else:
            # SDK releases whose create() lost the keyword still reach the API with it.
            payload["extra_body"] = {"temperature": temperature}
        if system:
            payload["system"] = "\n\n".join(system)
        # The API refuses whitespace-only stop sequences ("\n"); those are cut here instead.
        stop = [s for s in request.stop if s.strip()]
        if stop:
            payload["stop_sequences"] = stop
        return payload

    def _one(self, request: GenerateRequest) -> Generation:
        payload = self._payload(request)
        response = self._call(lambda: self._client.messages.create(**payload))
        try:
            text = "".join(block.text for block in response.content if getattr(block, "type", None) == "text")
        except (AttributeError, TypeError) as exc:
            raise ProviderError(f"{self.name}: unexpected Messages API response: {response!r:.300}") from exc
        usage = getattr(response, "usage", None)
        return Generation(
            text=cut_at_stop(text, request.stop),
            prompt_tokens=int(getattr(usage, "input_tokens", 0) or 0),
            completion_tokens=int(getattr(usage, "output_tokens", 0) or 0),
        )

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Answer each request with one Messages API call, in order.

        Args:
            requests: the requests; system messages go to ``system``, a raw prompt becomes
                one user message.

        Returns:
            One Generation per request, its text cut at the first stop string.

        Raises:
            AuthError: the key was refused.
            ProviderError: the call failed for good or the server's answer was malformed.
        """
        return [self._one(request) for request in requests]

    def logprob(self, requests: list[LogprobRequest]) -> list[LogprobResult]:
        """Not supported: Anthropic returns no log-probabilities.

        Raises:
            CapabilityError: always.
        """
        raise CapabilityError(f"{self.name}: Anthropic returns no log-probabilities; use --scoring accuracy")
