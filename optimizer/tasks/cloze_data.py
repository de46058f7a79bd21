"""Loaders of the cloze benchmarks AutoPrompt reports on: SST-2 and LAMA T-REx fact retrieval.

Both read public data from a folder given by the user (``--data-dir``), never from the
repository:

- ``sst2``: ``<data_dir>/sst2/{train,dev}.tsv`` (``sentence<TAB>label``, 1 = positive), as in
  AutoPrompt reproductions. The 1,000 training sentences are split (seeded) into 800 train and
  200 dev; the standard 872-sentence dev set is the test split. Outputs are ``positive`` /
  ``negative``; the human baseline is the manual template ``{sentence} It was [P] .``.
- ``lama:P17`` (or ``lama-P17``): ``<data_dir>/lama_trex/`` with ``TREx_train/P17.jsonl``
  (training facts, disjoint from LAMA; split seeded into train and 100 dev), ``trex_lms_vocab/
  P17.jsonl`` (the LAMA test facts) and ``relation_metainfo/LAMA_relations.jsonl`` (the manual
  template, e.g. ``[X] is located in [Y] .``, the human baseline). Input is the subject, output
  the object.

``data_dir`` may also point straight at the ``sst2`` or ``lama_trex`` folder.
"""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

from optimizer.errors import TaskError
from optimizer.types import Example

__all__ = ["SST2_TEMPLATE", "cloze_task_fields", "is_cloze_task", "lama_relation", "lama_test_files", "sst2_file"]

SST2_TEMPLATE = "{sentence} It was [P] ."
"""The manual SST-2 template (the human baseline)."""

_LAMA = re.compile(r"^(?:lama|trex)[:\-_](P\d+)$", re.I)


def is_cloze_task(name: str) -> bool:
    """Whether ``name`` is ``sst2`` or ``lama:P<id>``."""
    return name == "sst2" or bool(_LAMA.match(name))


def lama_relation(name: str) -> str | None:
    """The relation id of a LAMA task name.

    Args:
        name: A task name such as ``lama:P17``, ``lama-p17`` or ``trex_P17``.

    Returns:
        The relation, e.g. ``P17``, or None when ``name`` is not a LAMA task.
    """
    match = _LAMA.match(name)
    return match.group(1).upper() if match else None


def _root(data_dir: Path | None, sub: str, probe: str) -> Path | None:
    """``data_dir/sub`` or ``data_dir`` itself, the first that holds ``probe``."""
    if data_dir is None:
        return None
    return next((root for root in (data_dir / sub, data_dir) if (root / probe).exists()), None)


def _find(data_dir: Path | None, sub: str, probe: str, name: str) -> Path:
    if data_dir is None:
        raise TaskError(f"task {name!r} reads public data: pass --data-dir (or data_dir=, or set APO_DATA_DIR) "
                        f"pointing at the folder holding {sub}/ (e.g. ../shared/data)")
    root = _root(data_dir, sub, probe)
    if root is None:
        raise TaskError(f"task {name!r}: {data_dir / sub / probe} not found; fix: --data-dir must hold {sub}/{probe}")
    return root


def sst2_file(data_dir: Path | None) -> Path | None:
    """The SST-2 training file under a data folder.

    Args:
        data_dir: The folder holding ``sst2/`` (or the ``sst2`` folder itself), or None.

    Returns:
        ``sst2/train.tsv``, or None when it is not there.
    """
    root = _root(data_dir, "sst2", "train.tsv")
    return root / "train.tsv" if root else None


def lama_test_files(data_dir: Path | None) -> list[Path]:
    """The LAMA test-fact files under a data folder, one per relation, by relation number.

    Args:
        data_dir: The folder holding ``lama_trex/`` (or the ``lama_trex`` folder itself), or None.

    Returns:
        The files ``lama_trex/trex_lms_vocab/P<id>.jsonl``; the task of each is ``lama:P<id>``.
    """
    root = _root(data_dir, "lama_trex", "trex_lms_vocab")
    if root is None:
        return []
    files = [f for f in (root / "trex_lms_vocab").glob("P*.jsonl") if f.stem[1:].isdigit()]
    return sorted(files, key=lambda f: int(f.stem[1:]))


def _sst2_rows(path: Path) -> list[tuple[str, str]]:
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or [h.strip() for h in header[:2]] != ["sentence", "label"]:
            raise TaskError(f"{path}: expected a header 'sentence<TAB>label', got {header}")
        for n, row in enumerate(reader, start=2):
            if len(row) < 2 or row[1].strip() not in ("0", "1"):
                raise TaskError(f"{path}, line {n}: expected 'sentence<TAB>0|1', got {row!r}")
            rows.append((row[0].strip(), "positive" if row[1].strip() == "1" else "negative"))
    return rows


def _jsonl(path: Path) -> list[dict]:
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise TaskError(f"{path}, line {n}: not JSON ({exc})") from exc
    return out


def cloze_task_fields(name: str, data_dir: Path | None, seed: int) -> dict:
    """The fields of an SST-2 or LAMA task.

    Args:
        name: ``sst2`` or ``lama:P<id>``.
        data_dir: the folder holding ``sst2/`` or ``lama_trex/``.
        seed: seeds the train/dev split.

    Returns:
        Keyword arguments of :class:`~optimizer.tasks.task.Task`.

    Raises:
        TaskError: missing or malformed data, with the fix.
    """
    rng = random.Random(f"{seed}:{name}")
    if name == "sst2":
        root = _find(data_dir, "sst2", "train.tsv", name)
        train = [Example(input=s, output=y, id=f"train-{i}") for i, (s, y) in enumerate(_sst2_rows(root / "train.tsv"))]
        test = [Example(input=s, output=y, id=f"dev-{i}") for i, (s, y) in enumerate(_sst2_rows(root / "dev.tsv"))]
        rng.shuffle(train)
        return dict(name="sst2", description="SST-2 binary sentiment (GLUE); test = the 872-sentence dev set.",
                    train=train[200:], dev=train[:200], test=test, metric="label", labels=["negative", "positive"],
                    max_output_tokens=2, instructions=[SST2_TEMPLATE], source=str(root))
    rel = lama_relation(name)
    root = _find(data_dir, "lama_trex", "trex_lms_vocab", name)
    test_file, train_file = root / "trex_lms_vocab" / f"{rel}.jsonl", root / "TREx_train" / f"{rel}.jsonl"
    for f in (test_file, train_file):
        if not f.is_file():
            raise TaskError(f"task {name!r}: {f} not found; fix: use a relation present in {f.parent}")
    relations = root / "relation_metainfo" / "LAMA_relations.jsonl"
    manual = [r for r in _jsonl(relations) if r.get("relation") == rel]
    if not manual:
        raise TaskError(f"task {name!r}: no template for {rel} in {relations}")

    def facts(path: Path, prefix: str) -> list[Example]:
        out = []
        for i, r in enumerate(_jsonl(path)):
            if not isinstance(r.get("sub_label"), str) or not isinstance(r.get("obj_label"), str):
                raise TaskError(f"{path}, line {i + 1}: expected string fields sub_label and obj_label")
            out.append(Example(input=r["sub_label"], output=r["obj_label"], id=f"{prefix}-{i}"))
        return out

    test = facts(test_file, "test")
    seen = {(e.input, e.output) for e in test}
    train = [e for e in facts(train_file, "train") if (e.input, e.output) not in seen]
    rng.shuffle(train)
    n_dev = min(100, len(train) // 5)
    return dict(name=f"lama-{rel}", description=f"LAMA T-REx {rel} ({manual[0].get('label', '')}): predict the object.",
                train=train[n_dev:], dev=train[:n_dev], test=test, metric="normalized_match", max_output_tokens=4,
                instructions=[manual[0]["template"]], source=str(root))
