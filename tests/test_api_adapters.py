"""The OpenAI and Anthropic adapters, driven through the real SDKs over a mock HTTP transport."""

from __future__ import annotations

import importlib
import json

import anthropic
import pytest

from optimizer.errors import ApoError, CapabilityError, UsageError
from optimizer.models.base import CHAT, GENERATE, LOGPROB
from optimizer.models.providers.anthropic_api import AnthropicAdapter
from optimizer.models.providers.openai_api import OpenAIAdapter, TokenStep, follow_continuation
from optimizer.models.retry import AuthError, ProviderError, call_with_retries, is_retryable, retry_after
from optimizer.models.stops import cut_at_stop
from optimizer.types import GenerateRequest, LogprobRequest, Message

# The HTTP library the SDKs are built on (httpx, or its httpx2 fork): their http_client= must be one of its clients.
httpx = importlib.import_module(next(k.__module__.split(".")[0] for k in type(anthropic.Anthropic(api_key="x")._client)
                                     .__mro__ if not k.__module__.startswith(("anthropic", "builtins"))))


def chat_body(text: str = "Hello there", model: str = "gpt-4o-mini") -> dict:
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
    }


def completion_body(text: str = " world") -> dict:
    return {
        "id": "cmpl-xyz",
        "object": "text_completion",
        "created": 1700000000,
        "model": "smollm2",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def anthropic_body(text: str = "Bonjour") -> dict:
    return {
        "id": "msg_01abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 4},
    }


class Server:
    """A scripted HTTP peer: answers with the queued responses in turn, recording each request."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        item = self.responses.pop(0) if len(self.responses) > 1 else self.responses[0]
        if isinstance(item, Exception):
            raise item
        if callable(item):
            return item(request)
        return item

    @property
    def payloads(self) -> list[dict]:
        return [json.loads(r.content) for r in self.requests]

    def client(self):
        return httpx.Client(transport=httpx.MockTransport(self))


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def ok(body: dict, **headers) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


def error(status: int, **headers) -> httpx.Response:
    body = {"error": {"message": f"status {status}", "type": "error", "code": None}}
    return httpx.Response(status, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=request)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


def openai_adapter(server: Server, sleeps=None, **kwargs) -> OpenAIAdapter:
    return OpenAIAdapter(
        "gpt-4o-mini", api_key="sk-test", base_url="http://api.test/v1", http_client=server.client(),
        sleep=sleeps if sleeps is not None else Sleeps(), **kwargs,
    )


def anthropic_adapter(server: Server, sleeps=None) -> AnthropicAdapter:
    return AnthropicAdapter(
        "claude-haiku-4-5", api_key="sk-ant-test", base_url="http://api.test", http_client=server.client(),
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


# --- OpenAI ------------------------------------------------------------------------------


def test_openai_chat_success_payloads():
    server = Server(ok(chat_body("Paris. Next question")))
    model = openai_adapter(server)
    assert model.name == "openai:gpt-4o-mini"
    assert model.capabilities == {GENERATE, CHAT, LOGPROB}
    requests = [
        GenerateRequest(prompt="Capital of France?", max_tokens=16, temperature=0.7, stop=(".", "\n"), seed=3),
        GenerateRequest(
            messages=(Message(role="system", content="Be terse."), Message(role="user", content="Hi")),
            max_tokens=8,
        ),
    ]
    out = model.generate(requests)
    assert len(server.requests) == 2  # one HTTP request per GenerateRequest
    assert all(r.url.path == "/v1/chat/completions" for r in server.requests)
    first, second = server.payloads
    assert first["model"] == "gpt-4o-mini"
    assert first["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert first["max_tokens"] == 16 and first["temperature"] == 0.7
    assert first["stop"] == [".", "\n"] and first["seed"] == 3
    assert "n" not in first and "echo" not in first
    assert second["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}]
    assert "stop" not in second and "seed" not in second and second["temperature"] == 0.0
    assert out[0].text == "Paris"  # cut at the stop string even though the server did not
    assert (out[0].prompt_tokens, out[0].completion_tokens) == (11, 3)
    assert out[1].text == "Paris. Next question"


def test_openai_completions_mode():
    server = Server(ok(completion_body(" world\nInput: more")))
    model = openai_adapter(server, mode="completions")
    assert CHAT not in model.capabilities
    [gen] = model.generate([GenerateRequest(prompt="Hello", max_tokens=4, stop=("\n",))])
    assert server.requests[0].url.path == "/v1/completions"
    payload = server.payloads[0]
    assert payload["prompt"] == "Hello" and isinstance(payload["prompt"], str)
    assert payload["model"] == "gpt-4o-mini" and payload["max_tokens"] == 4 and payload["stop"] == ["\n"]
    assert "echo" not in payload and "n" not in payload
    assert gen.text == " world" and (gen.prompt_tokens, gen.completion_tokens) == (5, 2)
    with pytest.raises(CapabilityError):
        model.generate([GenerateRequest(messages=(Message(role="user", content="hi"),))])
    assert len(server.requests) == 1


def test_openai_missing_usage_counts_zero():
    body = chat_body("ok")
    del body["usage"]
    [gen] = openai_adapter(Server(ok(body))).generate([GenerateRequest(prompt="x")])
    assert (gen.text, gen.prompt_tokens, gen.completion_tokens) == ("ok", 0, 0)


def test_openai_429_honours_retry_after():
    server = Server(error(429, retry_after="7"), error(429, retry_after="2"), ok(chat_body("fine")))
    sleeps = Sleeps()
    [gen] = openai_adapter(server, sleeps).generate([GenerateRequest(prompt="x")])
    assert gen.text == "fine"
    assert len(server.requests) == 3
    assert sleeps == [7.0, 2.0]


def test_retry_after_is_capped_at_max_wait():
    server = Server(error(429, retry_after="3600"), ok(chat_body("fine")))
    sleeps = Sleeps()
    openai_adapter(server, sleeps, max_wait=30).generate([GenerateRequest(prompt="x")])
    assert sleeps == [30]


def test_openai_500_retried_with_backoff():
    server = Server(error(500), error(503), ok(chat_body("back")))
    sleeps = Sleeps()
    [gen] = openai_adapter(server, sleeps).generate([GenerateRequest(prompt="x")])
    assert gen.text == "back" and len(server.requests) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 60 for s in sleeps)


def test_openai_retries_are_bounded():
    server = Server(error(500))
    sleeps = Sleeps()
    with pytest.raises(ProviderError, match="gave up after 3 attempt") as info:
        openai_adapter(server, sleeps, attempts=3).generate([GenerateRequest(prompt="x")])
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert info.value.status_code == 500


@pytest.mark.parametrize("status", [401, 403])
def test_openai_auth_error_fails_fast(status):
    server = Server(error(status))
    sleeps = Sleeps()
    with pytest.raises(AuthError, match="OPENAI_API_KEY") as info:
        openai_adapter(server, sleeps).generate([GenerateRequest(prompt="x")])
    assert isinstance(info.value, UsageError)
    assert len(server.requests) == 1 and sleeps == []


@pytest.mark.parametrize("status", [400, 404])
def test_openai_client_errors_not_retried(status):
    server = Server(error(status))
    with pytest.raises(ProviderError) as info:
        openai_adapter(server).generate([GenerateRequest(prompt="x")])
    assert len(server.requests) == 1 and info.value.status_code == status


def test_openai_timeout_retried():
    server = Server(timeout, ok(chat_body("late")))
    sleeps = Sleeps()
    [gen] = openai_adapter(server, sleeps).generate([GenerateRequest(prompt="x")])
    assert gen.text == "late" and len(server.requests) == 2 and len(sleeps) == 1


def test_openai_connection_error_retried():
    server = Server(httpx.ConnectError("refused"), ok(chat_body("up")))
    [gen] = openai_adapter(server).generate([GenerateRequest(prompt="x")])
    assert gen.text == "up" and len(server.requests) == 2


def test_openai_malformed_json():
    bad = httpx.Response(200, content=b'{"id": "chatcmpl-1", "choices": [',
                         headers={"content-type": "application/json"})
    server = Server(bad)
    with pytest.raises(ApoError, match="malformed JSON"):
        openai_adapter(server).generate([GenerateRequest(prompt="x")])
    assert len(server.requests) == 1


def test_openai_unexpected_shape():
    server = Server(ok({"unexpected": True}))
    with pytest.raises(ApoError, match="unexpected chat response"):
        openai_adapter(server).generate([GenerateRequest(prompt="x")])


def test_openai_keys():
    with pytest.raises(UsageError, match="OPENAI_API_KEY"):
        OpenAIAdapter("gpt-4o-mini")
    local = OpenAIAdapter("smollm2", base_url="http://127.0.0.1:8000/v1")
    assert local._client.api_key == "not-needed"


def chat_logprobs_body(steps: list[tuple[str, float, list[tuple[str, float]]]]) -> dict:
    """A chat completion with ``logprobs.content`` as OpenAI returns it (bytes included)."""
    body = chat_body("".join(t for t, _, _ in steps))
    entry = lambda t, lp: {"token": t, "logprob": lp, "bytes": list(t.encode())}  # noqa: E731
    body["choices"][0]["logprobs"] = {
        "content": [{**entry(t, lp), "top_logprobs": [entry(a, alp) for a, alp in alts]} for t, lp, alts in steps],
        "refusal": None,
    }
    return body


def test_follow_continuation_cases():
    steps = [TokenStep("Par", -0.5, (("Par", -0.5), ("Lon", -2.0))), TokenStep("is", -0.25, (("is", -0.25),)),
             TokenStep(".", -1.0, ((".", -1.0), ("!", -3.0)))]
    assert follow_continuation("Paris", steps) == (-0.75, 2, True, True)  # on the greedy path
    assert follow_continuation("Paris!", steps) == (-3.75, 3, True, False)  # leaves it at its last token
    # leaves the path early: an upper bound (matched tokens plus the least likely alternative listed)
    assert follow_continuation("London", steps) == (-2.0, 1, False, False)
    assert follow_continuation("Rome", steps) == (-2.0, 1, False, False)
    assert follow_continuation("Paris. And more", steps)[2] is False  # generation ended first
    assert follow_continuation("", steps) == (0.0, 0, True, True)


def test_openai_chat_logprob_payload_and_exact_value():
    server = Server(ok(chat_logprobs_body([("Par", -0.5, [("Par", -0.5), ("Ber", -1.5)]),
                                           ("is", -0.25, [("is", -0.25)]), ("<|im_end|>", -0.1, [])])),
                    ok(chat_logprobs_body([("Ber", -0.2, [("Ber", -0.2), ("Par", -1.9)]), ("lin", -0.3, [])])))
    model = openai_adapter(server)
    first, second = model.logprob([LogprobRequest(context="Capital of France?\nA:", continuation=" Paris"),
                                   LogprobRequest(context="Capital of France?\nA:", continuation=" Paris")])
    payload = server.payloads[0]
    assert payload["messages"] == [{"role": "user", "content": "Capital of France?\nA:"}]
    assert payload["logprobs"] is True and payload["top_logprobs"] == 20 and payload["temperature"] == 0.0
    assert "echo" not in payload and "n" not in payload
    assert (first.logprob, first.n_tokens, first.exact, first.is_greedy) == (-0.75, 2, True, True)
    assert first.prompt_tokens == 14
    # the model preferred "Berlin": "Par" is an alternative, then the path is lost
    assert (second.logprob, second.exact, second.is_greedy) == (-1.9, False, False)


def test_openai_completions_logprob():
    body = completion_body(" Paris")
    body["choices"][0]["logprobs"] = {"tokens": [" Par", "is"], "token_logprobs": [-0.5, -0.25],
                                      "top_logprobs": [{" Par": -0.5, " Lon": -1.0}, {"is": -0.25}],
                                      "text_offset": [0, 4]}
    server = Server(ok(body))
    [result] = openai_adapter(server, mode="completions").logprob([LogprobRequest(context="A:", continuation=" Paris")])
    assert server.requests[0].url.path == "/v1/completions"
    assert server.payloads[0]["logprobs"] == 5 and server.payloads[0]["prompt"] == "A:"
    assert "echo" not in server.payloads[0]
    assert (result.logprob, result.n_tokens, result.exact) == (-0.75, 2, True)


def test_openai_logprob_refused_when_server_returns_none():
    model = openai_adapter(Server(ok(chat_body())))  # a server that ignores logprobs=true
    with pytest.raises(CapabilityError, match="returned no log-probabilities.*--scoring accuracy"):
        model.logprob([LogprobRequest(context="a", continuation="b")])


# --- Anthropic ---------------------------------------------------------------------------


def test_anthropic_success_payloads():
    server = Server(ok(anthropic_body("Salut\nInput: x")))
    model = anthropic_adapter(server)
    assert model.name == "anthropic:claude-haiku-4-5" and model.capabilities == {GENERATE, CHAT}
    requests = [
        GenerateRequest(
            messages=(Message(role="system", content="Translate to French."), Message(role="user", content="Hi")),
            max_tokens=20, temperature=0.5, stop=("\n", "END"), seed=1,
        ),
        GenerateRequest(prompt="Input: hello\nOutput:", max_tokens=5, temperature=1.5),
    ]
    out = model.generate(requests)
    assert len(server.requests) == 2 and all(r.url.path == "/v1/messages" for r in server.requests)
    headers = server.requests[0].headers
    assert "sk-ant-test" in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    first, second = server.payloads
    assert first["model"] == "claude-haiku-4-5" and first["max_tokens"] == 20
    assert first["system"] == "Translate to French."
    assert first["messages"] == [{"role": "user", "content": "Hi"}]
    assert first["temperature"] == 0.5
    assert first["stop_sequences"] == ["END"]  # whitespace-only stops are cut client-side
    assert "seed" not in first
    assert second["messages"] == [{"role": "user", "content": "Input: hello\nOutput:"}]
    assert "system" not in second and "stop_sequences" not in second and second["temperature"] == 1.0
    assert out[0].text == "Salut" and (out[0].prompt_tokens, out[0].completion_tokens) == (12, 4)


def test_anthropic_429_retry_after_and_500():
    server = Server(error(429, retry_after="4"), error(529), ok(anthropic_body("ok")))
    sleeps = Sleeps()
    [gen] = anthropic_adapter(server, sleeps).generate([GenerateRequest(prompt="x")])
    assert gen.text == "ok" and len(server.requests) == 3
    assert sleeps[0] == 4.0 and len(sleeps) == 2


def test_anthropic_auth_error_fails_fast():
    server = Server(httpx.Response(401, json={"type": "error", "error": {"type": "authentication_error",
                                                                        "message": "invalid x-api-key"}}))
    sleeps = Sleeps()
    with pytest.raises(AuthError, match="ANTHROPIC_API_KEY"):
        anthropic_adapter(server, sleeps).generate([GenerateRequest(prompt="x")])
    assert len(server.requests) == 1 and sleeps == []


def test_anthropic_timeout_retried():
    server = Server(timeout, ok(anthropic_body("late")))
    [gen] = anthropic_adapter(server).generate([GenerateRequest(prompt="x")])
    assert gen.text == "late" and len(server.requests) == 2


def test_anthropic_malformed_json():
    bad = httpx.Response(200, content=b"<html>oops", headers={"content-type": "application/json"})
    with pytest.raises(ApoError, match="malformed JSON"):
        anthropic_adapter(Server(bad)).generate([GenerateRequest(prompt="x")])


def test_anthropic_keys_and_logprob():
    with pytest.raises(UsageError, match="ANTHROPIC_API_KEY"):
        AnthropicAdapter("claude-haiku-4-5")
    model = anthropic_adapter(Server(ok(anthropic_body())))
    with pytest.raises(CapabilityError, match="no log-probabilities.*--scoring accuracy"):
        model.logprob([LogprobRequest(context="a", continuation="b")])


# --- retry helpers -----------------------------------------------------------------------


def test_retry_helpers_on_plain_exceptions():
    assert not is_retryable(ValueError("x")) and retry_after(ValueError("x")) is None
    assert is_retryable(TimeoutError()) and is_retryable(ConnectionError())
    assert not is_retryable(UsageError("x"))
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise TimeoutError("slow")
        return "done"

    sleeps = Sleeps()
    assert call_with_retries(flaky, sleep=sleeps) == "done" and len(calls) == 3 and len(sleeps) == 2
    with pytest.raises(KeyError):
        call_with_retries(lambda: {}["missing"], sleep=sleeps)


def test_cut_at_stop():
    assert cut_at_stop("a.b\nc", ["\n", "."]) == "a"
    assert cut_at_stop("abc", ["", "z"]) == "abc"
