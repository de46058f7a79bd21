"""Execution templates (zero- or few-shot, completion or chat) and APE's proposal meta-prompts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from optimizer.types import Example, GenerateRequest, LogprobRequest, Message

__all__ = ["ExecutionTemplate", "clean_instruction", "execution_template", "forward_prompt", "normalize_instruction", "variation_prompt"]


def _demo_block(demos: Sequence[Example]) -> str:
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
    same text as one user message and takes the assistant reply.
    """

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    demos: tuple[Example, ...] = ()
    """The k demonstrations, fixed for the whole run."""
    style: Literal["completion", "chat"] = "completion"
    """Completion (raw text) or chat (one user message)."""
    max_tokens: int = 16
    """New tokens allowed for an answer."""

    def context(self, instruction: str, example: Example) -> str:
        """The prompt text for ``example`` under ``instruction``."""
        head = f"Instruction: {instruction.strip()}\n\n" if instruction.strip() else ""
        return f"{head}{_demo_block(self.demos)}Input: {example.input}\nOutput:"

    def generate_request(self, instruction: str, example: Example) -> GenerateRequest:
        """A greedy request for the answer to ``example``."""
        text = self.context(instruction, example)
        if self.style == "chat":
            return GenerateRequest(messages=(Message(role="user", content=text),), max_tokens=self.max_tokens)
        return GenerateRequest(prompt=text, max_tokens=self.max_tokens, stop=("\n",))

    def logprob_request(self, instruction: str, example: Example) -> LogprobRequest:
        """A request for the log-probability of the gold output of ``example``."""
        return LogprobRequest(context=self.context(instruction, example), continuation=" " + example.output)


FORWARD_INTRO = (
    "I gave a friend an instruction and {n} inputs. The friend read the instruction and wrote an output "
    "for every one of the inputs. Here are the input-output pairs:\n\n"
)
FORWARD_TAIL = "The instruction was to"
VARIATION = "Generate a variation of the following instruction while keeping the semantic meaning."


def forward_prompt(demos: Sequence[Example], style: Literal["completion", "chat"], *, seed: int, sample_index: int,
                   temperature: float) -> GenerateRequest:
    """APE's forward-generation meta-prompt over ``demos``.

    Args:
        demos: the demonstrations shown to the proposer.
        style: completion (the model continues "The instruction was to") or chat.
        seed: sampling seed.
        sample_index: which sample of this prompt.
        temperature: sampling temperature.

    Returns:
        The request; its answer is cleaned with :func:`clean_instruction`.
    """
    body = FORWARD_INTRO.format(n=len(demos)) + _demo_block(demos)
    common = dict(max_tokens=48, temperature=temperature, seed=seed, sample_index=sample_index)
    if style == "chat":
        text = body + FORWARD_TAIL + " ...? Complete the sentence with the instruction only, in one line."
        return GenerateRequest(messages=(Message(role="user", content=text),), **common)
    return GenerateRequest(prompt=body + FORWARD_TAIL, stop=("\n",), **common)


def variation_prompt(instruction: str, style: Literal["completion", "chat"], *, seed: int, sample_index: int,
                     temperature: float) -> GenerateRequest:
    """APE's resampling meta-prompt: a variation of ``instruction`` with the same meaning."""
    common = dict(max_tokens=48, temperature=temperature, seed=seed, sample_index=sample_index)
    if style == "chat":
        text = f"{VARIATION} Reply with the new instruction only, in one line.\n\nInstruction: {instruction}"
        return GenerateRequest(messages=(Message(role="user", content=text),), **common)
    return GenerateRequest(prompt=f"{VARIATION}\n\nInput: {instruction}\n\nOutput:", stop=("\n",), **common)


def clean_instruction(text: str, *, forward: bool, max_chars: int = 300) -> str:
    """Turn a raw proposer answer into an instruction (first sentence, no quotes, sentence case).

    Args:
        text: the raw generation.
        forward: whether it continues "The instruction was to" (then "to" is restored).
        max_chars: the longest instruction kept.

    Returns:
        The instruction, or "" when nothing usable was generated.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    for prefix in ("The instruction was to", "The instruction was", "Instruction:", "Output:"):
        if line.lower().startswith(prefix.lower()):
            line = line[len(prefix):].strip()
    line = line.strip(" \"'`*").strip()
    if not line:
        return ""
    end = line.find(". ")
    if end > 0:
        line = line[: end + 1]
    if forward and not line[0].isupper():
        line = line[0].upper() + line[1:]
    return line[:max_chars].strip()


def normalize_instruction(text: str) -> str:
    """Key for de-duplication: lower case, letters and digits only, single spaces."""
    kept = "".join(ch.lower() if ch.isalnum() else " " for ch in text)
    return " ".join(kept.split())


def execution_template(task, *, shots: int | None, style: Literal["completion", "chat"], seed: int) -> ExecutionTemplate:
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
    return ExecutionTemplate(demos=tuple(demos), style=style, max_tokens=task.max_output_tokens)
