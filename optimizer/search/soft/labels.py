"""How a trained searcher's checkpoints are named as candidates (no model code: the engine's end reads them)."""

from __future__ import annotations

__all__ = ["TRAINED", "adapter_folder", "adapter_label", "adapter_step", "checkpoint_folder"]

TRAINED = frozenset({"prompt-tuning", "prefix-tuning", "p-tuning", "lora"})
"""The trained searchers: their prompts are adapters, not text."""


def adapter_label(method: str, step: int) -> str:
    """The candidate text of a checkpoint: ``<prompt-tuning adapter, step 150>``."""
    return f"<{method} adapter, step {step}>"


def adapter_step(searcher: object, text: object) -> int | None:
    """The checkpoint step of a trained searcher's candidate text (None for any other prompt)."""
    prefix = f"<{searcher} adapter, step "
    if searcher not in TRAINED or not isinstance(text, str) or not text.startswith(prefix) or not text.endswith(">"):
        return None
    step = text[len(prefix):-1]
    return int(step) if step.isdigit() else None


def checkpoint_folder(step: int) -> str:
    """The folder of the checkpoint of ``step`` in the run folder: ``adapter/step-00100``."""
    return f"adapter/step-{step:05d}"


def adapter_folder(searcher: object, text: object) -> str | None:
    """The folder of a trained candidate's checkpoint in the run folder (None for a text prompt)."""
    step = adapter_step(searcher, text)
    return None if step is None else checkpoint_folder(step)
