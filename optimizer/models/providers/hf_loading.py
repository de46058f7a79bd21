"""Loading transformers causal LMs for :class:`~optimizer.models.providers.hf.HFAdapter`.

``load_hf`` takes a folder holding a transformers causal LM, a ``.gguf`` file (dequantized to
float32 by transformers; needs ``gguf`` and ``accelerate``) or a Hub name (where the Hub is
reachable). A GGUF file is dequantized once and the result kept as safetensors under
``$APO_CACHE_DIR/converted/`` (set ``APO_KEEP_CONVERTED=0`` to skip). Weights are loaded once
per process and shared by every adapter that names the same file on the same device (through
:mod:`optimizer.models.providers.loaded`, the one cache of loaded models), so a proposer and a
target on one model cost one copy.

torch and transformers are imported only when a model is loaded.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from optimizer.errors import ModelUnavailable, UsageError
from optimizer.models.cache import cache_dir
from optimizer.models.providers.hf import DEFAULT_BATCH_SIZE, HFAdapter
from optimizer.models.providers.loaded import pick_device, quiet_loading, shared_model, unload_all

__all__ = ["DEFAULT_BATCH_SIZE", "load_hf", "quiet_loading", "unload_all"]

logger = logging.getLogger(__name__)

def _resolve(path_or_name: str) -> tuple[str, str, str | None]:
    """(cache key, folder or Hub name, gguf file name or None)."""
    spec = path_or_name.removeprefix("hf:")
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise UsageError(f"{spec}: a model file must be a .gguf file; otherwise pass the model's folder")
        path = path.resolve()
        return str(path), str(path.parent), path.name
    if path.is_dir():
        path = path.resolve()
        ggufs = sorted(path.glob("*.gguf"))
        if not (path / "config.json").exists() and len(ggufs) == 1:
            return str(ggufs[0]), str(path), ggufs[0].name
        return str(path), str(path), None
    if spec.startswith(("/", "./", "../", "~")) or spec.lower().endswith(".gguf") or spec.count("/") > 1:
        raise ModelUnavailable(f"model path {spec} does not exist")
    return spec, spec, None


def _pick_dtype(dtype: Any, device: str) -> Any:
    import torch

    if dtype is None:
        return torch.float32 if device == "cpu" else "auto"
    if isinstance(dtype, str) and dtype != "auto":
        value = getattr(torch, dtype, None)
        if not isinstance(value, torch.dtype):
            raise UsageError(f"unknown dtype {dtype!r}; use float32, bfloat16, float16 or auto")
        return value
    return dtype


def load_hf(
    path_or_name: str,
    *,
    device: str | None = None,
    dtype: Any = None,
    name: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> HFAdapter:
    """Load (once per process) a local or Hub causal LM and wrap it in an adapter.

    Args:
        path_or_name: a folder with a transformers causal LM, a ``.gguf`` file (or a folder
            holding exactly one and no ``config.json``), or a Hub name. A leading ``hf:`` is
            ignored.
        device: ``cpu``, ``cuda``, ``cuda:1``… (default: CUDA when available, else CPU).
        dtype: a torch dtype or its name (default: float32 on CPU, the checkpoint's on CUDA).
        name: the model id the adapter reports (default: ``path_or_name``).
        batch_size: requests per forward pass.

    Returns:
        A new adapter over weights shared with every other adapter for the same file,
        device and dtype; its ``path`` is ``path_or_name`` without the ``hf:`` prefix.

    Raises:
        ModelUnavailable: the path does not exist or the model could not be loaded.
    """
    key_path, source, gguf_file = _resolve(path_or_name)
    device = pick_device(device)
    torch_dtype = _pick_dtype(dtype, device)
    loaded = shared_model(("causal", key_path, device, str(torch_dtype)),
                          lambda: _load(source, gguf_file, device, torch_dtype))
    return HFAdapter(loaded.model, loaded.tokenizer, name=name or path_or_name, path=path_or_name.removeprefix("hf:"),
                     batch_size=batch_size, lock=loaded.lock)


def converted_dir(source: str, gguf_file: str, dtype: Any) -> Path:
    """Where the dequantized copy of a GGUF file is kept (keyed by its path, size, mtime and dtype)."""
    path = Path(source) / gguf_file
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}".encode()).hexdigest()[:16]
    return cache_dir() / "converted" / f"{path.stem}-{key}"


def _dequantized(model: Any) -> None:
    """Drop what marks a model read from GGUF as quantized: transformers has already dequantized its weights, and
    the marks only block what a float model allows (saving it, ``.float()`` on a copy to train an adapter)."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Write a loaded model and tokenizer as safetensors, atomically (temporary folder + rename)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.replace(tmp, target)
    except Exception as exc:  # a full or read-only cache only costs speed next time
        if isinstance(exc, OSError) and (target / "config.json").exists():  # another loader kept the same copy first
            logger.debug("a converted copy of the model is already in %s", target)
        else:
            logger.warning("could not keep a converted copy of the model in %s: %s", target, exc)
        shutil.rmtree(tmp, ignore_errors=True)


def _load(source: str, gguf_file: str | None, device: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    started = time.perf_counter()
    converted = None
    if gguf_file and os.environ.get("APO_KEEP_CONVERTED", "1") != "0":
        # Dequantizing a GGUF file takes most of a load (13 s for SmolLM2 here); a
        # safetensors copy in the cache loads in a fraction of that.
        converted = converted_dir(source, gguf_file, dtype)
        converted.parent.mkdir(parents=True, exist_ok=True)
        if (converted / "config.json").exists():
            source, extra, converted = str(converted), {}, None
    quiet_loading()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
    except (OSError, ValueError, ImportError) as exc:
        where = f"{source}/{gguf_file}" if gguf_file else source
        hint = (
            "pass a local folder or a .gguf file as hf:/path (the Hugging Face Hub may be unreachable; "
            "HF_HUB_OFFLINE=1 skips its retries and uses only the local Hugging Face cache)"
            if not Path(source).exists()
            else "check that it holds a causal LM that transformers can read (GGUF needs `pip install gguf accelerate`)"
        )
        raise ModelUnavailable(f"could not load model {where}: {exc}\n{hint}") from exc
    if gguf_file:
        _dequantized(model)
    if converted is not None:
        _save_converted(model, tokenizer, converted)
    # transformers declares `to` as @wraps(torch.nn.Module.to), so type checkers take `device` for `self`
    model.to(device)  # type: ignore[arg-type]
    model.eval()
    logger.info("loaded %s in %.1f s on %s", gguf_file or source, time.perf_counter() - started, device)
    return model, tokenizer

