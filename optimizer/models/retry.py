"""Bounded retries for calls to provider APIs, honouring ``Retry-After``.

Rate limits (HTTP 429), server errors (5xx), request timeouts (408), timeouts and dropped
connections are retried with exponential backoff and jitter, at most ``attempts`` times in
all. When the server sends a ``Retry-After`` header (seconds), its value is the wait, capped
at ``max_wait``. Client errors (400, 401, 403, 404, …) are never retried: an authentication
failure becomes a :class:`AuthError` naming the environment variable that holds the key, and
any other failure that is given up on becomes a :class:`ProviderError`.

The classification works on the exception types of both the ``openai`` and the ``anthropic``
SDKs (and on raw httpx transport errors) by duck typing, so neither SDK is imported here.

Example:
    ::

        reply = call_with_retries(
            lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages),
            key_env="OPENAI_API_KEY",
        )
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from optimizer.errors import ApoError, UsageError

__all__ = [
    "AuthError",
    "ProviderError",
    "RETRYABLE_STATUS",
    "RetryingCaller",
    "call_with_retries",
    "credentials",
    "is_retryable",
    "preflight",
    "redact",
    "retry_after",
    "status_code",
]

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""HTTP statuses below 500 that are worth retrying (every status of 500 and above is too)."""

_AUTH_STATUS = frozenset({401, 403})


class AuthError(UsageError):
    """The provider refused the API key (HTTP 401/403); the message names the variable to set."""


class ProviderError(ApoError):
    """A provider call failed for good: a client error, or retries ran out.

    Attributes:
        status_code: the HTTP status, or None for timeouts, dropped connections and
            malformed responses.
    """

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(redact(message))
        self.status_code = status_code


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of a provider error.

    Args:
        exc: an exception raised by an SDK call.

    Returns:
        The status code of an ``APIStatusError`` (of either SDK), otherwise None. A response
        that failed validation (status 200) counts as having no status.
    """
    if "APIStatusError" not in _class_names(exc):
        return None
    code = getattr(exc, "status_code", None)
    return code if isinstance(code, int) else None


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed call is worth trying again.

    Args:
        exc: an exception raised by an SDK call.

    Returns:
        True for HTTP 408/409/429 and 5xx, timeouts and connection errors (SDK
        ``APITimeoutError``/``APIConnectionError`` or httpx transport errors); False for
        everything else, notably 400/401/403/404, malformed responses and apo's own errors.
    """
    if isinstance(exc, ApoError):
        return False
    code = status_code(exc)
    if code is not None:
        return code in RETRYABLE_STATUS or code >= 500
    names = _class_names(exc)
    return bool(names & {"APIConnectionError", "APITimeoutError", "TimeoutException", "TransportError"}) or isinstance(
        exc, (TimeoutError, ConnectionError)
    )


def retry_after(exc: BaseException) -> float | None:
    """The wait the server asked for, from ``Retry-After`` (or ``retry-after-ms``).

    Args:
        exc: an exception raised by an SDK call.

    Returns:
        Seconds to wait (never negative), or None when the error carries no such header or
        its value cannot be read. HTTP-date values are converted to seconds from now.
    """
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _wait(max_wait: float) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=1, max=max_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = retry_after(exc) if exc is not None else None
        if asked is not None:
            return min(asked, max_wait)
        return backoff(state)

    return wait


_SECRET_PATTERNS = [
    re.compile(r"(?i)(authorization|x-api-key|api[-_]?key|proxy-authorization)(['\"]?\s*[:=]\s*['\"]?)"
               r"(bearer\s+|basic\s+)?[^\s'\",}]+"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"\b(sk|pk|rk)-[A-Za-z0-9_-]{8,}"),
    re.compile(r"\bsk-ant-[A-Za-z0-9_-]{8,}"),
]
MAX_ERROR_CHARS = 500
"""The most characters of a provider's error text that apo prints or stores."""


def redact(text: str) -> str:
    """Provider error text made safe to print or store: API keys and Authorization headers replaced by
    ``[redacted]`` (the values of ``OPENAI_API_KEY`` and ``ANTHROPIC_API_KEY`` wherever they appear, bearer
    tokens, ``sk-…`` keys, ``authorization:``/``x-api-key:``/``api_key=`` values), cut to :data:`MAX_ERROR_CHARS`.

    Args:
        text: the text, e.g. an error body echoed by a server.

    Returns:
        The redacted text.
    """
    import os

    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        value = os.environ.get(env)
        if value and len(value) >= 4:
            text = text.replace(value, "[redacted]")
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[redacted]", text)
    for pattern in _SECRET_PATTERNS[1:]:
        text = pattern.sub("[redacted]", text)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + " …(cut)"


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return redact(f"{type(exc).__name__}: {message}")


def _is_connection(exc: BaseException) -> bool:
    names = _class_names(exc)
    return bool(names & {"APIConnectionError", "ConnectError", "ConnectTimeout"}) and "APITimeoutError" not in names \
        or isinstance(exc, ConnectionError)


def _root_cause(exc: BaseException) -> str:
    seen = exc
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
    return redact(str(seen) or type(seen).__name__)


def call_with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 6,
    max_wait: float = 60,
    sleep: Callable[[float], None] = time.sleep,
    key_env: str | None = None,
    what: str = "provider call",
    endpoint: str | None = None,
    url_env: str | None = None,
) -> T:
    """Call ``fn`` until it succeeds, retrying only transient failures.

    Args:
        fn: the call to make, with no arguments.
        attempts: the most calls made in all (1 means no retry).
        max_wait: the longest wait between two calls, in seconds; caps ``Retry-After`` too.
        sleep: the function that waits (tests pass a recorder).
        key_env: the environment variable holding the API key, named in the message of an
            :class:`AuthError`.
        what: what is being called (``openai:gpt-4o-mini``), for error messages.
        endpoint: the base URL called, named in the message of a connection failure.
        url_env: the variable that sets the base URL, named in the fix of a connection failure.

    Returns:
        What ``fn`` returns.

    Raises:
        AuthError: on HTTP 401/403, after exactly one call.
        ProviderError: on any other HTTP error that is not retried or once ``attempts``
            transient failures were met, and on a response body that is not valid JSON.
    """
    retrying = Retrying(
        stop=stop_after_attempt(max(1, attempts)),
        wait=_wait(max_wait),
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except ApoError:
        raise
    except json.JSONDecodeError as exc:
        raise ProviderError(f"{what}: the server answered with malformed JSON ({exc})") from exc
    except Exception as exc:
        code = status_code(exc)
        if code in _AUTH_STATUS:
            hint = f"; set {key_env} to a valid API key" if key_env else ""
            at = f" at {endpoint}" if endpoint else ""
            raise AuthError(f"{what}: the provider{at} refused the API key (HTTP {code}){hint}") from exc
        names = _class_names(exc)
        if "APIResponseValidationError" in names:
            raise ProviderError(
                f"{what}: the server's response did not match the API schema ({_describe(exc)})"
            ) from exc
        if is_retryable(exc):
            made = retrying.statistics.get("attempt_number", attempts)
            if _is_connection(exc):
                where = endpoint or "the provider's endpoint"
                fix = (f"start the server, or correct --base-url{f' / {url_env}' if url_env else ''}" if endpoint
                       else "check the network connection")
                raise ProviderError(f"{what}: cannot connect to {where} ({_root_cause(exc)}) after {made} "
                                    f"attempt(s); fix: {fix}", code) from exc
            raise ProviderError(f"{what}: gave up after {made} attempt(s): {_describe(exc)}", code) from exc
        if code is not None or "APIError" in names:
            raise ProviderError(f"{what}: {_describe(exc)}", code) from exc
        raise


def preflight(caller: RetryingCaller, fn: Callable[[], object]) -> None:
    """A cheap request (a model listing) made before a job writes anything: a server that cannot be reached or a
    key that is refused (HTTP 401) stops the job at once, with the URL and the fix; any other answer (404 from a
    server without the listing, 403 from a key without that permission) lets the job go on.

    Args:
        caller: the adapter's caller (its endpoint and key variable name the fix).
        fn: the request.

    Raises:
        AuthError: HTTP 401.
        UsageError: no connection after two attempts.
    """
    try:
        caller(fn, attempts=2)
    except AuthError:
        raise
    except ProviderError as exc:
        if exc.status_code is None and "cannot connect" in str(exc):
            raise UsageError(str(exc)) from None


class RetryingCaller:
    """What every HTTP adapter shares: its retry settings and one way to call through them.

    Args:
        name: the adapter's model id, used in messages.
        key_env: the environment variable that holds its API key.
        attempts: the most calls per request, retries included.
        max_wait: the longest wait between retries, in seconds.
        sleep: the function that waits between retries (default ``time.sleep``).
    """

    def __init__(self, name: str, key_env: str, attempts: int = 6, max_wait: float = 60,
                 sleep: Callable[[float], None] | None = None, url_env: str | None = None) -> None:
        self.name = name
        self.key_env = key_env
        self.url_env = url_env
        self.endpoint: str | None = None
        """The base URL called (set by the adapter once its client exists), for connection messages."""
        self.attempts = attempts
        self.max_wait = max_wait
        self.sleep = sleep

    def __call__(self, fn: Callable[[], T], attempts: int | None = None) -> T:
        """Call ``fn`` under the retry policy of :func:`call_with_retries` (``attempts`` overrides the adapter's)."""
        return call_with_retries(fn, attempts=attempts or self.attempts, max_wait=self.max_wait,
                                 sleep=self.sleep if self.sleep is not None else time.sleep,
                                 key_env=self.key_env, what=self.name, endpoint=self.endpoint, url_env=self.url_env)


def credentials(name: str, key_env: str, url_env: str, api_key: str | None, base_url: str | None,
                hint: str = "") -> tuple[str, str | None]:
    """The (key, base URL) an HTTP adapter connects with.

    Args:
        name: the adapter's model id, for messages.
        key_env: the variable holding the key (e.g. OPENAI_API_KEY).
        url_env: the variable holding a base URL (e.g. OPENAI_BASE_URL).
        api_key: a key passed in code (wins over the variable).
        base_url: a base URL passed in code (wins over the variable).
        hint: appended to the missing-key message.

    Returns:
        The key (a placeholder for a custom server that needs none) and the URL (None: the
        provider's own endpoint).

    Raises:
        UsageError: no key for the provider's own endpoint.
    """
    import os

    url = base_url or os.environ.get(url_env) or None
    key = api_key or os.environ.get(key_env) or None
    if key is None:
        if url is None:
            raise UsageError(f"{name}: no API key; set {key_env}{hint}")
        key = "not-needed"
    return key, url
