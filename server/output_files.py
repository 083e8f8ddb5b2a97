"""Writes a job's files so that each appears whole or not at all."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Iterable

from server.aggregator import ENCODING_WINDOWS_1252, decode_windows_1252

OUTPUT_HEADER = "Department Name,Total Number of Sales\n"
# A cell starting with one of these is run as a formula by spreadsheets.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A name that needs quoting (RFC 4180: delimiter, quote, either line-break character) or a
# formula guard. csv.writer would leave a lone CR unquoted, which readers take as a line break.
_NEEDS_CARE = re.compile(r'[,"\r\n]|^[=+\-@\t]')


def neutralise_formula(name: str) -> str:
    """Prefixes a name a spreadsheet would run as a formula with a quote."""
    return "'" + name if name.startswith(_FORMULA_STARTS) else name


def temporary_path(final: Path) -> Path:
    """Where a file is written before it is renamed to `final`."""
    return final.with_name(f".{final.name}.tmp")


def _publish(temporary: Path, final: Path) -> None:
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def csv_cell(name: str) -> str:
    """A department name as one output cell: formula-guarded, quoted where RFC 4180 needs it."""
    name = neutralise_formula(name)
    if any(ch in name for ch in ',"\r\n'):
        return '"' + name.replace('"', '""') + '"'
    return name


def write_totals(path: Path, totals: Iterable[tuple[str, int]]) -> None:
    """Writes the totals CSV to a temporary name, then renames it into place."""
    temporary = temporary_path(path)
    care = _NEEDS_CARE.search
    lines = [f"{csv_cell(name) if care(name) else name},{total}\n" for name, total in totals]
    with open(temporary, "w", encoding="utf-8", newline="") as handle:
        handle.write(OUTPUT_HEADER)
        handle.writelines(lines)
    _publish(temporary, path)


def publish_rejected(raw: Path, path: Path, encoding: str) -> None:
    """Turns the aggregator's rejected-rows file (in the input's encoding) into UTF-8 at path."""
    temporary = temporary_path(path)
    if encoding == ENCODING_WINDOWS_1252:
        with open(raw, "rb") as source, open(temporary, "w", encoding="utf-8",
                                             newline="") as target:
            while block := source.read(1 << 20):
                target.write(decode_windows_1252(block))
        os.unlink(raw)
    else:
        shutil.move(raw, temporary)
    _publish(temporary, path)
