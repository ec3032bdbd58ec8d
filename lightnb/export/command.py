"""The ``export`` command, as both fronts run it: ``lightnb export ...`` in a shell and ``%lightnb export ...``
in a notebook take the same arguments, print the same lines and give the same exit code.

It belongs to neither front: the script front adds it to the ``lightnb`` command (:func:`add_arguments`,
:func:`run`), the magic runs it whole (:func:`main`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

EXIT_OK, EXIT_USAGE = 0, 2

DESCRIPTION = "Write NOTEBOOK as an app script that `lightnb run` runs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's arguments, on ``parser`` (the ``export`` subcommand of ``lightnb``)."""
    parser.add_argument("notebook", metavar="NOTEBOOK.ipynb")
    parser.add_argument("-o", "--output", metavar="APP.py",
                        help="where to write it (default: beside the notebook, .py; '-' for stdout)")
    parser.add_argument("--force", action="store_true", help="overwrite a file lightnb export did not write")
    parser.add_argument("--strict", action="store_true",
                        help="fail on magics and shell escapes instead of commenting them out")


def run(args: argparse.Namespace) -> int:
    """Export as ``args`` say; a notebook that cannot be exported is reported as ``lightnb: <why>``, exit
    code 2."""
    from . import ExportError, convert, export_notebook, read_notebook

    try:
        if args.output == "-":
            notebook = Path(args.notebook)
            script = convert(read_notebook(notebook), name=notebook.name, strict=args.strict)
            sys.stdout.write(script.source)
        else:
            script = export_notebook(args.notebook, args.output, force=args.force, strict=args.strict)
            print(f"lightnb: wrote {script.path} (run it with `lightnb run {script.path}`)", file=sys.stderr)
    except ExportError as error:
        print(f"lightnb: {error}", file=sys.stderr)
        return EXIT_USAGE
    for note in script.notes:
        print(f"lightnb: note: {note}", file=sys.stderr)
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    """``lightnb export ARGV...``: the exit code (bad arguments are argparse's ``SystemExit``, as in a
    shell)."""
    parser = argparse.ArgumentParser(prog="lightnb export", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))
