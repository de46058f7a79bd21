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
        super().__init__(message)
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


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def call_with_retries(
    fn: Callable[[], T],
    *,
    attempts: int = 6,
    max_wait: float = 60,
    sleep: Callable[[float], None] = time.sleep,
    key_env: str | None = None,
    what: str = "provider call",
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
            raise AuthError(f"{what}: the provider refused the API key (HTTP {code}){hint}") from exc
        names = _class_names(exc)
        if "APIResponseValidationError" in names:
            raise ProviderError(
                f"{what}: the server's response did not match the API schema ({_describe(exc)})"
            ) from exc
        if is_retryable(exc):
            made = retrying.statistics.get("attempt_number", attempts)
            raise ProviderError(f"{what}: gave up after {made} attempt(s): {_describe(exc)}", code) from exc
        if code is not None or "APIError" in names:
            raise ProviderError(f"{what}: {_describe(exc)}", code) from exc
        raise


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
                 sleep: Callable[[float], None] | None = None) -> None:
        self.name = name
        self.key_env = key_env
        self.attempts = attempts
        self.max_wait = max_wait
        self.sleep = sleep

    def __call__(self, fn: Callable[[], T]) -> T:
        """Call ``fn`` under the retry policy of :func:`call_with_retries`."""
        return call_with_retries(fn, attempts=self.attempts, max_wait=self.max_wait,
                                 sleep=self.sleep if self.sleep is not None else time.sleep,
                                 key_env=self.key_env, what=self.name)


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
