"""``apo export``: a run's shipped prompt exactly as the target saw it, through :mod:`optimizer.api`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optimizer import api
from optimizer.cli.render import check_output_file
from optimizer.errors import UsageError

__all__ = ["cmd_export"]


def cmd_export(args: argparse.Namespace) -> int:
    """apo export: the prompt (or the whole export) on stdout or in --out; the text format's manifest on stderr."""
    if args.out:
        check_output_file(args.out, "--out")
    exported = api.export_prompt(args.run_id, args.runs_dir)
    text = exported.format_as(args.format)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            raise UsageError(f"cannot write {args.out}: {exc.strerror or exc}; choose another --out file") from None
    else:
        sys.stdout.write(text)
        if not text.endswith("\n") and sys.stdout.isatty():  # on a terminal only: the prompt itself ends as it is
            sys.stdout.write("\n")
        sys.stdout.flush()
    if args.format == "text":
        print("\n".join(exported.manifest_lines()), file=sys.stderr)
    for note in exported.notes_for(args.format):
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        print(f"wrote the {args.format} export of run {exported.manifest.run_id} to {args.out}", file=sys.stderr)
    return 0
