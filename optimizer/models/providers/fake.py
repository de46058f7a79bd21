"""A scriptable, deterministic fake model that records its calls.

It ships in the package so that unit tests, examples and ``apo … --target fake:NAME`` can run
without any model. It is for unit tests: integration tests use the real embedded model.

Example:
    A target that answers correctly only when the prompt carries a planted instruction::

        fake = FakeModel(
            "fake:planted",
            proposals=["Say hi.", "Reverse the word."],
            answer=lambda prompt: last_input(prompt)[::-1] if "Reverse the word" in prompt else "?",
        )
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable

from optimizer.models.base import CHAT, GENERATE, LOGPROB
from optimizer.models.stops import cut_at_stop
from optimizer.types import GenerateRequest, Generation, LogprobRequest, LogprobResult

__all__ = ["FakeModel", "FAKES", "last_input", "make_fake", "register_fake"]

_INPUT = re.compile(r"Input:[ \t]*(.*)")


def last_input(prompt: str) -> str:
    """The text after the last ``Input:`` marker of a rendered prompt (empty if none)."""
    found = _INPUT.findall(prompt)
    return found[-1].strip() if found else ""


def _stable_int(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _is_proposal(text: str) -> bool:
    """Whether ``text`` is a searcher's meta-prompt (APE's forward generation or variation, a reflection)."""
    from optimizer.search.ape.prompts import FORWARD_TAIL, VARIATION
    from optimizer.search.reflect import REFLECT_INTRO

    return FORWARD_TAIL in text or VARIATION in text or REFLECT_INTRO in text


class FakeModel:
    """A deterministic model answering from Python callables, recording every request.

    Args:
        name: the model id (``fake:…``).
        proposals: answers to meta-prompts (proposal, variation, critique, rewrite), picked
            deterministically from the prompt and the sample index.
        propose: maps a meta-prompt to its answer, or to None to fall back on ``proposals``
            (a scripted proposer, e.g. one that states a rule only when shown failures).
        answer: maps an execution prompt (the whole rendered text) to the answer.
        logprob_fn: maps (context, continuation) to a log-probability; by default the
            continuation scores 0 when ``answer(context)`` produces it and -5 per character
            of difference otherwise.
        chat: whether to claim a chat template.
        delay: seconds to sleep per request (to make jobs slow enough to interrupt in tests).
    """

    def __init__(
        self,
        name: str = "fake:echo",
        *,
        proposals: list[str] | None = None,
        propose: Callable[[str], str | None] | None = None,
        answer: Callable[[str], str] | None = None,
        logprob_fn: Callable[[str, str], float] | None = None,
        chat: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.capabilities = frozenset({GENERATE, LOGPROB} | ({CHAT} if chat else set()))
        self.proposals = list(proposals or ["Repeat the input."])
        self.propose = propose
        self.answer = answer or last_input
        self.logprob_fn = logprob_fn
        self.calls: list[GenerateRequest | LogprobRequest] = []
        self.batches: list[int] = []
        self.delay = delay

    def _text(self, request: GenerateRequest) -> str:
        if request.prompt is not None:
            return request.prompt
        return "\n".join(m.content for m in request.messages or ())

    def generate(self, requests: list[GenerateRequest]) -> list[Generation]:
        """Answer each request; proposal prompts get one of ``proposals``."""
        self.batches.append(len(requests))
        out = []
        for request in requests:
            self.calls.append(request)
            if self.delay:
                time.sleep(self.delay)
            text = self._text(request)
            if _is_proposal(text):
                scripted = self.propose(text) if self.propose is not None else None
                pick = _stable_int(text, request.sample_index, request.seed) % len(self.proposals)
                reply = scripted if scripted is not None else self.proposals[pick]
            else:
                reply = self.answer(text)
            reply = cut_at_stop(reply, request.stop)
            out.append(
                Generation(text=reply, prompt_tokens=len(text.split()), completion_tokens=len(reply.split()) or 1)
            )
        return out

    def logprob(self, requests: list[LogprobRequest]) -> list[LogprobResult]:
        """Score each continuation with ``logprob_fn`` (see the class docstring for the default)."""
        self.batches.append(len(requests))
        out = []
        for request in requests:
            self.calls.append(request)
            if self.logprob_fn is not None:
                value = float(self.logprob_fn(request.context, request.continuation))
            else:
                wanted = self.answer(request.context).strip()
                got = request.continuation.strip()
                value = 0.0 if got == wanted else -5.0 * (1 + abs(len(got) - len(wanted)))
            n = max(1, len(request.continuation.split()))
            out.append(
                LogprobResult(logprob=value, n_tokens=n, is_greedy=value == 0.0,
                              prompt_tokens=len(request.context.split()) + n)
            )
        return out


def _upper(name: str, delay: float = 0.0) -> FakeModel:
    return FakeModel(
        name,
        proposals=["Repeat the input.", "Write the input in capital letters.", "Say nothing.", "Shout the input.",
                   "Copy the words.", "Write the input in CAPITAL LETTERS please.", "Answer in lower case."],
        answer=lambda p: last_input(p).upper() if "capital letters" in p.lower() else last_input(p),
        delay=delay,
    )


FAKES: dict[str, Callable[[], FakeModel]] = {
    "echo": lambda: FakeModel("fake:echo"),
    "upper": lambda: _upper("fake:upper"),
    "slow": lambda: _upper("fake:slow", delay=0.02),
}
"""Built-in fakes by name, usable from the CLI as ``fake:NAME``."""


def register_fake(name: str, factory: Callable[[], FakeModel]) -> None:
    """Make ``fake:NAME`` resolve to ``factory()`` (tests register their own scripted fakes)."""
    FAKES[name] = factory


def make_fake(name: str) -> FakeModel:
    """Build the fake registered under ``name``."""
    from optimizer.errors import UsageError

    if name not in FAKES:
        raise UsageError(f"unknown fake model 'fake:{name}'; known: {', '.join('fake:' + k for k in sorted(FAKES))}")
    return FAKES[name]()
