"""Adapter for OpenAI's API and OpenAI-compatible servers (vLLM, llama.cpp, LM Studio, …).

One HTTP request per prompt: servers differ in how they treat ``n``, lists of prompts and
``echo``, so none of those is used. Chat mode sends ``/chat/completions``; completions mode
sends raw text to ``/completions`` (for base models served without a chat template).

Log-probabilities of a given continuation (APE's log-prob scoring and tie-breaks) come from the
log-probabilities the API offers for *generated* tokens: the adapter decodes greedily with
``logprobs`` and ``top_logprobs`` and follows the continuation along the model's own path. The
value is exact when the continuation lies on that path, or leaves it only at its last token and
that token is among the alternatives returned. Otherwise the result is marked ``exact=False``
and is an upper bound: the tokens matched so far plus, where the path left the continuation,
the log-probability of the least likely alternative returned (the continuation's token is less
likely than every alternative listed). A server that returns no log-probabilities fails with a
:class:`~optimizer.errors.CapabilityError`.

Example:
    ::

        model = OpenAIAdapter("gpt-4o-mini")
        [answer] = model.generate([GenerateRequest(prompt="Say hi.", max_tokens=8)])

        local = OpenAIAdapter("smollm2", base_url="http://127.0.0.1:8000/v1", mode="completions")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, NamedTuple

from optimizer.errors import CapabilityError, ModelUnavailable, UsageError
from optimizer.models.base import CHAT, GENERATE, LOGPROB
from optimizer.models.retry import ProviderError, RetryingCaller, credentials, preflight
from optimizer.models.stops import cut_at_stop
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["OpenAIAdapter", "TokenStep", "follow_continuation"]

KEY_ENV = "OPENAI_API_KEY"
"""The environment variable holding the OpenAI API key."""
BASE_URL_ENV = "OPENAI_BASE_URL"
"""The environment variable naming an OpenAI-compatible endpoint."""


class TokenStep(NamedTuple):
    """One generated token with its log-probability and the alternatives the API listed."""

    token: str
    logprob: float
    alternatives: tuple[tuple[str, float], ...]


def follow_continuation(continuation: str, steps: Sequence[TokenStep]) -> tuple[float, int, bool, bool]:
    """Score ``continuation`` along a greedy generation's tokens.

    Args:
        continuation: the text whose log-probability is wanted.
        steps: the generated tokens, in order, each with its top alternatives.

    Returns:
        ``(logprob, n_tokens, exact, is_greedy)``. ``exact`` is False when the continuation
        leaves the generated path before its last token, or its last token is not among the
        alternatives listed, or the generation ended early; ``logprob`` is then an upper bound.
    """
    remaining, total, n = continuation, 0.0, 0
    for step in steps:
        if not remaining:
            break
        if step.token and remaining.startswith(step.token):
            total, n, remaining = total + step.logprob, n + 1, remaining[len(step.token):]
            continue
        matches = [(t, lp) for t, lp in step.alternatives if t and remaining.startswith(t)]
        if matches:
            token, lp = max(matches, key=lambda m: len(m[0]))
            total, n, remaining = total + lp, n + 1, remaining[len(token):]
            return total, n, not remaining, False
        floor = min([lp for _, lp in step.alternatives] + [step.logprob])
        return total + floor, n + 1, False, False
    return total, n, not remaining, not remaining


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
        timeout: seconds to wait for one HTTP response before it counts as timed out (and
            is retried like a 5xx).
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
        timeout: float = 120,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if mode not in ("chat", "completions"):
            raise UsageError(f"openai:{model}: mode must be 'chat' or 'completions', not {mode!r}")
        self.model = model
        self.mode = mode
        self.name = f"openai:{model}" if mode == "chat" else f"openai-completions:{model}"
        self.capabilities = frozenset({GENERATE, CHAT, LOGPROB} if mode == "chat" else {GENERATE, LOGPROB})
        self.timeout = timeout
        self._call = RetryingCaller(self.name, KEY_ENV, attempts, max_wait, sleep, url_env=BASE_URL_ENV)
        self._client = client if client is not None else self._make_client(base_url, api_key, http_client)
        self._call.endpoint = str(getattr(self._client, "base_url", "") or "") or None

    def preflight(self) -> None:
        """Check the endpoint and key with a model listing (see :func:`~optimizer.models.retry.preflight`)."""
        preflight(self._call, lambda: self._client.with_options(timeout=min(self.timeout, 15)).models.list())

    def _make_client(self, base_url: str | None, api_key: str | None, http_client: Any) -> Any:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a declared dependency
            raise ModelUnavailable(f"{self.name} needs the openai package: pip install openai") from exc
        key, url = credentials(self.name, KEY_ENV, BASE_URL_ENV, api_key, base_url,
                               " (or pass a base URL for an OpenAI-compatible server)")
        return openai.OpenAI(api_key=key, base_url=url, max_retries=0, http_client=http_client,
                             timeout=self.timeout)

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
                messages = [{"role": "user", "content": request.prompt or ""}]  # a request has one or the other
            response = self._call(lambda: self._client.chat.completions.create(messages=messages, **options))
            try:
                text = response.choices[0].message.content
            except (AttributeError, IndexError, TypeError) as exc:
                raise ProviderError(f"{self.name}: unexpected chat response: {response!r:.300}") from exc
        if text is not None and not isinstance(text, str):
            raise ProviderError(f"{self.name}: unexpected response text: {text!r:.300}")
        prompt_tokens, completion_tokens = _usage(
            getattr(response, "usage", None), "prompt_tokens", "completion_tokens"
        )
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
        """Log-probability of each continuation, read off a greedy generation (see the module).

        Chat mode sends the context as the user's message and scores the continuation, its
        leading whitespace removed, as the start of the assistant's reply; completions mode
        continues the raw context.

        Args:
            requests: (context, continuation) pairs.

        Returns:
            One result per request; ``exact`` says whether the value is exact or an upper bound.

        Raises:
            CapabilityError: the server returned no log-probabilities.
            AuthError: the key was refused.
            ProviderError: the call failed for good or the server's answer was malformed.
        """
        return [self._logprob_one(request) for request in requests]

    def _logprob_one(self, request: LogprobRequest) -> LogprobResult:
        continuation = request.continuation if self.mode == "completions" else request.continuation.lstrip()
        options: dict[str, Any] = {"model": self.model, "temperature": 0.0,
                                   "max_tokens": max(4, len(continuation) // 2 + 4)}
        if self.mode == "completions":
            response = self._call(lambda: self._client.completions.create(
                prompt=request.context, logprobs=5, **options))
            steps = self._completion_steps(response)
        else:
            messages = [{"role": "user", "content": request.context}]
            response = self._call(lambda: self._client.chat.completions.create(
                messages=messages, logprobs=True, top_logprobs=20, **options))
            steps = self._chat_steps(response)
        logprob, n, exact, greedy = follow_continuation(continuation, steps)
        prompt_tokens, completion_tokens = _usage(
            getattr(response, "usage", None), "prompt_tokens", "completion_tokens"
        )
        return LogprobResult(logprob=logprob, n_tokens=n, is_greedy=greedy, exact=exact,
                             prompt_tokens=prompt_tokens + completion_tokens)

    def _no_logprobs(self, response: Any) -> CapabilityError:
        return CapabilityError(
            f"{self.name}: the server returned no log-probabilities (it may not offer them for this model); "
            f"use --scoring accuracy, which needs none. Response: {response!r:.200}"
        )

    def _chat_steps(self, response: Any) -> list[TokenStep]:
        try:
            content = response.choices[0].logprobs.content
        except (AttributeError, IndexError, TypeError):
            content = None
        if not content:
            raise self._no_logprobs(response)
        try:
            return [TokenStep(t.token, float(t.logprob),
                              tuple((a.token, float(a.logprob)) for a in (t.top_logprobs or ())))
                    for t in content]
        except (AttributeError, TypeError, ValueError) as exc:
            raise ProviderError(f"{self.name}: unexpected logprobs in response: {response!r:.300}") from exc

    def _completion_steps(self, response: Any) -> list[TokenStep]:
        try:
            lp = response.choices[0].logprobs
            tokens, values, tops = lp.tokens, lp.token_logprobs, lp.top_logprobs or [None] * len(lp.tokens)
        except (AttributeError, IndexError, TypeError):
            tokens = None
        if not tokens:
            raise self._no_logprobs(response)
        try:
            return [TokenStep(t, float(v), tuple((a, float(b)) for a, b in (top or {}).items()))
                    for t, v, top in zip(tokens, values, tops)]
        except (AttributeError, TypeError, ValueError) as exc:
            raise ProviderError(f"{self.name}: unexpected logprobs in response: {response!r:.300}") from exc
