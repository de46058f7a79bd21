"""The one cache of loaded local models, shared by the causal and masked-LM loaders.

Weights are loaded once per process and shared by every adapter that names the same model
(same file or folder, device and dtype), so a proposer and a target on one model cost one copy;
each loaded model carries one lock that every adapter over it holds around its passes.
:func:`unload_all` forgets every loaded model, causal and masked alike.

torch and transformers are imported only when a device is picked or a model is loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

from optimizer.errors import UsageError

__all__ = ["LoadedModel", "loaded_count", "pick_device", "quiet_loading", "shared_model", "unload_all"]


class LoadedModel(NamedTuple):
    """Weights in memory with their tokenizer and the lock that serialises passes over them."""

    model: Any
    """The transformers model, in eval mode on its device."""
    tokenizer: Any
    """Its tokenizer."""
    lock: threading.Lock
    """Held around every pass by every adapter sharing the model."""


_LOADED: dict[Hashable, LoadedModel] = {}
_LOCK = threading.Lock()


def shared_model(key: Hashable, load: Callable[[], tuple[Any, Any]]) -> LoadedModel:
    """The model cached under ``key``, loading it with ``load()`` the first time.

    Args:
        key: what identifies the weights, e.g. ``("causal", path, device, dtype)``; loaders
            start it with their kind so that causal and masked entries never collide.
        load: returns ``(model, tokenizer)``; called at most once per key, under a lock.

    Returns:
        The cached model, tokenizer and lock.
    """
    with _LOCK:
        if key not in _LOADED:
            model, tokenizer = load()
            _LOADED[key] = LoadedModel(model, tokenizer, threading.Lock())
        return _LOADED[key]


def loaded_count() -> int:
    """How many models are loaded.

    Returns:
        The number of cached entries (causal and masked together).
    """
    with _LOCK:
        return len(_LOADED)


def unload_all() -> None:
    """Forget every loaded model, causal and masked (memory is freed once no adapter refers to them)."""
    with _LOCK:
        _LOADED.clear()


def quiet_loading() -> None:
    """Turn off transformers' per-load "Loading weights" bar: apo's progress line says what loads."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def pick_device(device: str | None) -> str:
    """The device to load on.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:1``…, or None for CUDA when available, else CPU.

    Returns:
        The device name.

    Raises:
        UsageError: CUDA was asked for but is not available.
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    return device
