"""Adapter for OpenAI's API and OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, …).

One HTTP request per prompt: servers differ in how they treat ``n``, lists of prompts and
``echo``, so none of those is used. Chat mode sends ``/chat/completions``; completions mode
sends raw text to ``/completions`` (for base models served without a chat template).

Example:
    ::

        model = OpenAIAdapter("gpt-4o-mini")
        [answer] = model.generate([GenerateRequest(prompt="Say hi.", max_tokens=8)])

        local = OpenAIAdapter("smollm2", base_url="http://127.0.0.1:8000/v1", mode="completions")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from optimizer.backends.base import CHAT, GENERATE
from optimizer.backends.retry import ProviderError, RetryingCaller, credentials
from optimizer.errors import CapabilityError, ModelUnavailable, UsageError
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["OpenAIAdapter", "cut_at_stop"]

KEY_ENV = "OPENAI_API_KEY"
"""The environment variable holding the OpenAI API key."""
BASE_URL_ENV = "OPENAI_BASE_URL"
"""The environment variable naming an OpenAI-compatible endpoint."""


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """Cut ``text`` at the earliest occurrence of any stop string.

    Servers differ in whether they apply stop strings (and some cannot take every string), so
    adapters cut on their side too.

    Args:
        text: the generated text.
        stop: the stop strings; empty strings are ignored.

    Returns:
        ``text`` up to, not including, the first stop string found.
    """
    cut = len(text)
    for s in stop:
        if s:
            at = text.find(s)
            if at != -1:
                cut = min(cut, at)
    return text[:cut]


def _usage(usage: Any, prompt_field: str, completion_field: str) -> tuple[int, int]:
    if usage is None:
        return 0, 0
    return int(getattr(usage, prompt_field, 0) or 0), int(getattr(usage, completion_field, 0) or 0)


class OpenAIAdapter:
    """Generates text with one OpenAI (or OpenAI-compatible) model.

    Args:
        model: the model id on the server (``gpt-4o-mini``).
        base_url: an OpenAI-compatible endpoint; defaults to ``$OPENAI_BASE_URL``, then to
            OpenAI itself.
        api_key: the key; defaults to ``$OPENAI_API_KEY``. Required for OpenAI itself; a
            custom endpoint gets a dummy key when none is set.
        client: a ready ``openai.OpenAI`` client (then ``base_url``, ``api_key`` and
            ``http_client`` are ignored).
        mode: ``chat`` for ``/chat/completions``, ``completions`` for raw-text
            ``/completions`` (chat messages are then refused).
        http_client: an ``httpx.Client`` for the SDK (proxies, tests with a mock transport).
        attempts: the most calls per request, retries included.
        max_wait: the longest wait between retries, in seconds.
        sleep: the function that waits between retries (default ``time.sleep``).

    Raises:
        UsageError: when no key is set for OpenAI's own endpoint, or ``mode`` is unknown.
        ModelUnavailable: when the ``openai`` package is not installed.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        mode: Literal["chat", "completions"] = "chat",
        http_client: Any = None,
        attempts: int = 6,
        max_wait: float = 60,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if mode not in ("chat", "completions"):
            raise UsageError(f"openai:{model}: mode must be 'chat' or 'completions', not {mode!r}")
        self.model = model
        self.mode = mode
        self.name = f"openai:{model}"
        self.capabilities = frozenset({GENERATE, CHAT} if mode == "chat" else {GENERATE})
        self._call = RetryingCaller(self.name, KEY_ENV, attempts, max_wait, sleep)
        self._client = client if client is not None else self._make_client(base_url, api_key, http_client)

    def _make_client(self, base_url: str | None, api_key: str | None, http_client: Any) -> Any:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a declared dependency
            raise ModelUnavailable(f"{self.name} needs the openai package: pip install openai") from exc
        key, url = credentials(self.name, KEY_ENV, BASE_URL_ENV, api_key, base_url,
                               " (or pass a base URL for an OpenAI-compatible server)")
        return openai.OpenAI(api_key=key, base_url=url, max_retries=0, http_client=http_client)

    def _options(self, request: GenerateRequest) -> dict[str, Any]:
        options: dict[str, Any] = {
            "model": self.model,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        stop = [s for s in request.stop if s]
        if stop:
            options["stop"] = stop
        if request.seed is not None:
            options["seed"] = request.seed
        return options

    def _one(self, request: GenerateRequest) -> Generation:
        options = self._options(request)
        if self.mode == "completions":
            if request.messages is not None:
                raise CapabilityError(
                    f"{self.name} runs in completions mode and takes raw prompts, not chat messages; "
                    "use chat mode or a completion-style template"
                )
            response = self._call(lambda: self._client.completions.create(prompt=request.prompt, **options))
            try:
                text = response.choices[0].text
            except (AttributeError, IndexError, TypeError) as exc:
                raise ProviderError(f"{self.name}: unexpected completion response: {response!r:.300}") from exc
        else:
            if request.messages is not None:
                messages = [{"role": m.role, "content": m.content} for m in request.messages]
            else:
                messages = [{"role": "user", "content": request.prompt}]
            response = self._call(lambda: self._client.chat.completions.create(messages=messages, **options))
            try:
                text = response.choices[0].message.content
            except (AttributeError, IndexError, TypeError) as exc:
                raise ProviderError(f"{self.name}: unexpected chat response: {response!r:.300}") from exc
        if text is not None and not isinstance(text, str):
            raise ProviderError(f"{self.name}: unexpected response text: {text!r:.300}")
        prompt_tokens, completion_tokens = _usage(getattr(response, "usage", None), "prompt_tokens", "completion_tokens")
        return Generation(
            text=cut_at_stop(text or "", request.stop),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Answer each request with one API call, in order.

        Args:
            requests: the requests; chat messages keep their roles (system included).

        Returns:
            One Generation per request, its text cut at the first stop string.

        Raises:
            CapabilityError: chat messages in completions mode.
            AuthError: the key was refused.
            ProviderError: the call failed for good or the server's answer was malformed.
        """
        return [self._one(request) for request in requests]

    def logprob(self, requests: list[LogprobRequest]) -> list[LogprobResult]:
        """Not supported: chat APIs do not score a given continuation.

        Raises:
            CapabilityError: always.
        """
        raise CapabilityError(
            f"{self.name} does not provide log-probabilities of a given continuation; use --scoring accuracy"
        )
