"""APE's meta-prompts (Zhou et al. 2022): forward generation and resampling, and the clean-up of their answers."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Literal

from optimizer.tasks.templates import demo_block
from optimizer.types import Example, GenerateRequest, Message

__all__ = ["FORWARD_TAIL", "VARIATION", "clean_instruction", "forward_prompt", "variation_prompt"]

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
    body = FORWARD_INTRO.format(n=len(demos)) + demo_block(demos)
    request = partial(GenerateRequest, max_tokens=48, temperature=temperature, seed=seed, sample_index=sample_index)
    if style == "chat":
        text = body + FORWARD_TAIL + " ...? Complete the sentence with the instruction only, in one line."
        return request(messages=(Message(role="user", content=text),))
    return request(prompt=body + FORWARD_TAIL, stop=("\n",))


def variation_prompt(instruction: str, style: Literal["completion", "chat"], *, seed: int, sample_index: int,
                     temperature: float) -> GenerateRequest:
    """APE's resampling meta-prompt: a variation of ``instruction`` with the same meaning."""
    request = partial(GenerateRequest, max_tokens=48, temperature=temperature, seed=seed, sample_index=sample_index)
    if style == "chat":
        text = f"{VARIATION} Reply with the new instruction only, in one line.\n\nInstruction: {instruction}"
        return request(messages=(Message(role="user", content=text),))
    return request(prompt=f"{VARIATION}\n\nInput: {instruction}\n\nOutput:", stop=("\n",))


def clean_instruction(text: str, *, forward: bool, max_chars: int = 300, first_sentence: bool = True) -> str:
    """Turn a raw proposer answer into an instruction (first line, no quotes, sentence case).

    Args:
        text: the raw generation.
        forward: whether it continues "The instruction was to" (then the first letter is capitalised).
        max_chars: the longest instruction kept.
        first_sentence: keep only the first sentence (APE's short instructions); reflection keeps the line.

    Returns:
        The instruction, or "" when nothing usable was generated.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[0]
    for prefix in ("A better instruction, which gets every one of these right, was to", "The instruction was to",
                   "The instruction was", "Better instruction:", "Instruction:", "Output:"):
        if line.lower().startswith(prefix.lower()):
            line = line[len(prefix):].strip()
    line = line.strip(" \"'`*").strip()
    if not line:
        return ""
    end = line.find(". ") if first_sentence else -1
    if end > 0:
        line = line[: end + 1]
    if forward and not line[0].isupper():
        line = line[0].upper() + line[1:]
    return line[:max_chars].strip()
