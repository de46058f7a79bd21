"""Execution templates: how a prompt, k demonstrations and an input become a request to the target."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from optimizer.tasks.metrics import first_line
from optimizer.types import Example, GenerateRequest, LogprobRequest, Message

__all__ = ["ExecutionTemplate", "demo_block", "execution_template", "multiline_answers", "normalize_instruction"]


def demo_block(demos: Sequence[Example]) -> str:
    """Demonstrations as ``Input: …/Output: …`` blocks, each followed by a blank line."""
    return "".join(f"Input: {d.input}\nOutput: {d.output}\n\n" for d in demos)


class ExecutionTemplate(BaseModel):
    """How an instruction, k demonstrations and an input become a prompt for the target.

    Completion style (the default, best for small models)::

        Instruction: <instruction>

        Input: <demo input>
        Output: <demo output>

        Input: <input>
        Output:

    The instruction line is left out for the no-instruction baseline. Chat style sends the
    same text as one user message and takes the assistant reply. A completion ends at the first
    newline, or at a blank line when the task's answers span lines.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    demos: tuple[Example, ...] = ()
    """The k demonstrations, fixed for the whole run."""
    style: Literal["completion", "chat"] = "completion"
    """Completion (raw text) or chat (one user message)."""
    max_tokens: int = 16
    """New tokens allowed for an answer."""
    multiline: bool = False
    """Whether answers span lines (some gold output holds a newline): an answer then runs to a blank line (or the
    next ``Input:``) instead of the first newline, and is scored whole instead of by its first line."""

    @property
    def stop(self) -> tuple[str, ...]:
        """Where a completion-style answer ends."""
        return ("\n\n", "\nInput:") if self.multiline else ("\n",)

    @property
    def decoding(self) -> str:
        """How the target answers and how the answer is read from its reply, in words."""
        end = ("a blank line or a next 'Input:'" if self.multiline else "the first newline") \
            if self.style == "completion" else ""
        read = " up to its first blank line" if self.multiline else "'s first non-empty line"
        return f"greedy (temperature 0){', stopping at ' + end if end else ''}; the answer is the reply{read}, stripped"

    def answer(self, text: str) -> str:
        """The answer in a generation, as the metric sees it: its first non-empty line, stripped; for multi-line
        answers, the text before the first blank line, each line stripped on the right."""
        if not self.multiline:
            return first_line(text)
        lines = [line.rstrip() for line in text.strip().split("\n\n")[0].split("\nInput:")[0].splitlines()]
        return "\n".join(lines).strip()

    def with_demos(self, demos: Sequence[Example] | None) -> ExecutionTemplate:
        """The same template with other demonstrations (None: these)."""
        return self if demos is None else self.model_copy(update={"demos": tuple(demos)})

    def context(self, instruction: str, example: Example) -> str:
        """The prompt text for ``example`` under ``instruction``."""
        head = f"Instruction: {instruction.strip()}\n\n" if instruction.strip() else ""
        return f"{head}{demo_block(self.demos)}Input: {example.input}\nOutput:"

    def generate_request(self, instruction: str, example: Example) -> GenerateRequest:
        """A greedy request for the answer to ``example``."""
        text = self.context(instruction, example)
        if self.style == "chat":
            return GenerateRequest(messages=(Message(role="user", content=text),), max_tokens=self.max_tokens)
        return GenerateRequest(prompt=text, max_tokens=self.max_tokens, stop=self.stop)

    def logprob_request(self, instruction: str, example: Example) -> LogprobRequest:
        """A request for the log-probability of the gold output of ``example``."""
        return LogprobRequest(context=self.context(instruction, example), continuation=" " + example.output)


def normalize_instruction(text: str) -> str:
    """Key for de-duplication: lower case, letters and digits only, single spaces."""
    kept = "".join(ch.lower() if ch.isalnum() else " " for ch in text)
    return " ".join(kept.split())


def execution_template(
    task, *, shots: int | None, style: Literal["completion", "chat"], seed: int
) -> ExecutionTemplate:
    """The run's execution template: ``shots`` demonstrations drawn from train with the run seed.

    Args:
        task: the task (its train split, default shots and output length).
        shots: number of demonstrations (None: the task's default).
        style: completion or chat.
        seed: the run seed.

    Returns:
        The template; the same seed always gives the same demonstrations.
    """
    import random

    k = task.shots if shots is None else shots
    demos = random.Random(f"{seed}:shots").sample(task.train, min(k, len(task.train)))
    return ExecutionTemplate(demos=tuple(demos), style=style, max_tokens=task.max_output_tokens,
                             multiline=multiline_answers(task))


def multiline_answers(task) -> bool:
    """Whether some gold output of the task spans lines (then answers run to a blank line)."""
    return any("\n" in ex.output.strip() for split in (task.train, task.dev, task.test) for ex in split)
