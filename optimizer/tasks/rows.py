"""Reading task data rows into examples: JSONL, JSON (a list, or an instruction-induction file), CSV and TSV.

A row has ``input`` and ``output`` and may have ``alternatives`` (a list, or in CSV/TSV a
``|``-separated cell) and ``id``; the column names can be changed. Every malformed row raises
:class:`~optimizer.errors.TaskError` naming the file, the line or field, and the fix.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from optimizer.errors import TaskError
from optimizer.types import Example

__all__ = ["DATA_SUFFIXES", "is_induction_file", "read_examples", "row_example"]

DATA_SUFFIXES = (".jsonl", ".json", ".csv", ".tsv")
"""The data file types that can hold examples."""
_ALTERNATIVE_KEYS = ("possible_translations", "other_rhymes", "all_common_concepts")


def _text(value: Any, where: str, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise TaskError(f'{where}: field "{key}" must be a string, got {type(value).__name__}')


def row_example(row: Any, where: str, cols: tuple[str, str, str], default_id: str) -> Example:
    """Turn one data row into an Example.

    Args:
        row: The row as read (a mapping, for a well-formed file).
        where: The file and line or item, named in error messages.
        cols: The names of the input, output and alternatives fields.
        default_id: The id when the row has no ``id``.

    Returns:
        The example.

    Raises:
        TaskError: When a field is missing or of the wrong type; the message names ``where``.
    """
    inp, out, alt = cols
    if not isinstance(row, Mapping):
        raise TaskError(f'{where}: expected an object with "{inp}" and "{out}", got {type(row).__name__}')
    for key in (inp, out):
        if key not in row or row[key] is None:
            raise TaskError(
                f'{where}: missing "{key}" (found: {", ".join(map(str, row)) or "nothing"}); fix: '
                f'give every example "{inp}" and "{out}", or set input_column/output_column in task.yaml'
            )
    raw = row.get(alt)
    if raw is None or raw == "":
        alternatives: list[str] = []
    elif isinstance(raw, str):
        alternatives = [a.strip() for a in raw.split("|") if a.strip()]
    elif isinstance(raw, list):
        alternatives = [_text(a, where, alt) for a in raw]
    else:
        raise TaskError(f'{where}: "{alt}" must be a list of strings or a "|"-separated string')
    return Example(
        input=_text(row[inp], where, inp),
        output=_text(row[out], where, out),
        alternatives=tuple(alternatives),
        id=str(row.get("id", default_id)),
    )


def _induction_examples(data: Mapping[str, Any], path: Path, seed: int) -> list[Example]:
    """Examples of an instruction-induction file ``{"examples": {"1": {...}, ...}}``.

    Rows without ``input`` are built the way APE's loader builds them (cause_and_effect,
    common_concept); known lists of accepted answers become alternatives.
    """
    examples = data["examples"]
    if not isinstance(examples, Mapping):
        raise TaskError(f'{path}: field "examples" must map ids to {{"input": ..., "output": ...}}')
    rng = random.Random(seed)
    keys = sorted(examples, key=lambda k: (0, int(k)) if str(k).isdigit() else (1, str(k)))
    out = []
    for key in keys:
        row = examples[key]
        where = f"{path}: examples.{key}"
        if isinstance(row, Mapping) and "input" not in row:
            row = dict(row)
            if "cause" in row and "effect" in row:  # APE: the two sentences in random order
                pair = [row["cause"], row["effect"]]
                rng.shuffle(pair)
                row.update(input=f"Sentence 1: {pair[0]} Sentence 2: {pair[1]}", output=row["cause"])
            elif isinstance(row.get("items"), list):
                row.update(input=", ".join(map(str, row["items"])), output=row.get("concept"))
        keys_here = row if isinstance(row, Mapping) else {}
        alt_key = next((k for k in _ALTERNATIVE_KEYS if k in keys_here), "alternatives")
        out.append(row_example(row, where, ("input", "output", alt_key), str(key)))
    return out


def read_examples(path: Path, cols: tuple[str, str, str], seed: int, field: str = "") -> list[Example]:
    """Read a data file (.jsonl, .json, .csv, .tsv) into Examples.

    Args:
        path: The file; a ``.json`` file may be a list of rows or an instruction-induction file.
        cols: The names of the input, output and alternatives fields or columns.
        seed: Seed of the sentence order of instruction-induction cause/effect rows.
        field: The task.yaml field that named the file, quoted in error messages.

    Returns:
        The examples, in file order.
    """
    suffix = path.suffix.lower()
    label = f" (field `{field}`)" if field else ""
    if suffix not in DATA_SUFFIXES:
        raise TaskError(
            f"{path}{label}: unsupported file type {suffix!r}; use one of {', '.join(DATA_SUFFIXES)}"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskError(f"{path}{label}: cannot read the file ({exc})") from exc
    if suffix == ".jsonl":
        rows: list[Example] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TaskError(
                    f"{path}:{lineno}: not valid JSON ({exc.msg}, column {exc.colno}); fix: one "
                    f'object per line, like {{"{cols[0]}": "...", "{cols[1]}": "..."}}'
                ) from exc
            rows.append(row_example(row, f"{path}:{lineno}", cols, str(len(rows))))
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TaskError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}, column {exc.colno})") from exc
        if isinstance(data, Mapping) and "examples" in data:
            return _induction_examples(data, path, seed)
        if not isinstance(data, list):
            raise TaskError(
                f'{path}: expected a list of {{"{cols[0]}": ..., "{cols[1]}": ...}} objects or '
                f'an instruction-induction file {{"examples": {{"1": {{...}}}}}}'
            )
        return [row_example(row, f"{path}: item {i}", cols, str(i)) for i, row in enumerate(data)]
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
    header = reader.fieldnames or []
    for col in cols[:2]:
        if col not in header:
            raise TaskError(
                f'{path}:1: no column "{col}" (columns: {", ".join(header) or "none"}); fix: name '
                f"the columns {cols[0]},{cols[1]} or set input_column/output_column in task.yaml"
            )
    return [row_example(row, f"{path}:{reader.line_num}", cols, str(i)) for i, row in enumerate(reader)]


def is_induction_file(path: Path) -> bool:
    """Whether a data file is an instruction-induction file ``{"examples": {"1": {...}, ...}}``.

    Args:
        path: A data file.

    Returns:
        True for a ``.json`` file whose top level is a mapping with ``examples``.
    """
    if path.suffix.lower() != ".json":
        return False
    data = json.loads(path.read_text(encoding="utf-8-sig"))
    return isinstance(data, Mapping) and "examples" in data
