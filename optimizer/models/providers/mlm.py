"""Local transformers masked LMs (BERT, RoBERTa, DistilBERT, …) as white-box models for AutoPrompt.

A masked LM cannot generate text or score continuations, so its adapter has only the
``whitebox`` capability: the AutoPrompt searcher reads its tokenizer, input embeddings and
forward/backward passes. Weights load once per process (``AutoModelForMaskedLM``), in the
same cache as causal LMs (:mod:`optimizer.models.providers.loaded`).

torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from optimizer.errors import CapabilityError, ModelUnavailable
from optimizer.models.base import WHITEBOX
from optimizer.models.providers.loaded import pick_device, quiet_loading, shared_model

__all__ = ["MaskedLMAdapter", "is_masked_lm", "load_mlm"]

_ENCODERS = {"bert", "roberta", "distilbert", "albert", "electra", "xlm-roberta", "camembert", "deberta",
             "deberta-v2", "mpnet", "modernbert"}


class MaskedLMAdapter:
    """A masked LM behind the adapter protocol; white-box only.

    Args:
        model: a loaded ``AutoModelForMaskedLM`` in eval mode.
        tokenizer: its tokenizer (with a mask token).
        name: the model id reported in results (the model string the user wrote).
        path: the folder (or Hub name) the weights came from, recorded in a run's provenance.
        lock: serialises passes when several adapters share the model.
    """

    kind = "masked"
    capabilities: frozenset[str] = frozenset({WHITEBOX})

    def __init__(self, model: Any, tokenizer: Any, *, name: str, path: str | None = None,
                 lock: threading.Lock | None = None) -> None:
        if tokenizer.mask_token_id is None:
            raise CapabilityError(f"model {name!r} has no mask token, so it is not a masked LM")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.path = path
        self.lock = lock or threading.Lock()

    def generate(self, requests: list) -> list:
        """Masked LMs do not generate text."""
        raise CapabilityError(f"masked LM {self.name!r} cannot generate text; use it with --searcher autoprompt")


def is_masked_lm(path_or_name: str) -> bool:
    """Whether a model folder (or Hub name) holds a masked LM, judged by its config.

    Args:
        path_or_name: a local folder (read without importing transformers) or a Hub name
            (its config read through transformers; False when it cannot be reached).

    Returns:
        True for an encoder (BERT-like) config or an architecture named ``…ForMaskedLM``.
    """
    folder = Path(path_or_name).expanduser()
    config = folder / "config.json"
    if folder.exists() or "/" in path_or_name and path_or_name.startswith((".", "/", "~")):
        if not config.is_file():
            return False
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
    else:  # a Hub name: read its config from the Hub or the local Hugging Face cache
        try:
            from transformers import AutoConfig

            data = AutoConfig.from_pretrained(path_or_name).to_dict()
        except (OSError, ValueError):
            return False
    archs = data.get("architectures") or []
    if any(a.endswith("ForMaskedLM") for a in archs):
        return True
    return data.get("model_type") in _ENCODERS and not data.get("is_decoder", False) and not any(
        a.endswith("ForCausalLM") for a in archs)


def load_mlm(path_or_name: str, *, device: str | None = None, name: str | None = None) -> MaskedLMAdapter:
    """Load (once per process) a masked LM from a folder or a Hub name.

    Args:
        path_or_name: a local folder or a Hub name (``bert-base-cased`` where the Hub or its
            local cache is available). A leading ``hf:`` is ignored.
        device: ``cpu``, ``cuda``… (default: CUDA when available).
        name: the model id the adapter reports.

    Returns:
        The adapter.

    Raises:
        ModelUnavailable: the model could not be loaded.
    """
    spec = path_or_name.removeprefix("hf:")
    device = pick_device(device)
    local = Path(spec).expanduser()
    source = str(local.resolve()) if local.exists() else spec
    loaded = shared_model(("masked", source, device), lambda: _load_masked(source, spec, device))
    return MaskedLMAdapter(loaded.model, loaded.tokenizer, name=name or path_or_name, path=source, lock=loaded.lock)


def _load_masked(source: str, spec: str, device: str) -> tuple[Any, Any]:
    """Read a masked LM and its tokenizer from ``source`` onto ``device``, in eval mode."""
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    quiet_loading()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForMaskedLM.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(
            f"could not load masked LM {spec}: {exc}\npass a local folder holding a transformers masked LM "
            "(config.json, weights, tokenizer) as hf:/path, or use the embedded one: embedded:splade-tiny"
        ) from exc
    model.to(device).eval()
    return model, tokenizer
