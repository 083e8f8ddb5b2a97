"""Where Save as suggests putting the totals, and what it last saved."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy
from PySide6.QtCore import QObject, QStandardPaths, Signal

from desktop_app.background import Background
from reports.save import CannotSave, save_table
from reports.table import TotalsTable
from salesapi import sales_pb2

log = logging.getLogger(__name__)

SUFFIXES = (".xlsx", ".csv")


class SaveTarget:
    """Suggests `march_sales - totals.xlsx` beside the file it came from; remembers the last
    file saved (Open file opens it)."""

    def __init__(self) -> None:
        self.saved = ""

    @staticmethod
    def suggest(jobs: list[sales_pb2.Job], chosen: list[Path]) -> Path:
        """The input's folder when it is one of the files chosen here, else Documents."""
        names = [Path(job.filename or "sales").name for job in jobs] or ["sales"]
        folder = next((path.parent for path in chosen if path.name == names[0]), None)
        if folder is None:
            folder = Path(QStandardPaths.writableLocation(
                QStandardPaths.StandardLocation.DocumentsLocation))
        stem = Path(names[0]).stem
        if len(names) > 1:
            stem += f" and {len(names) - 1} more"
        return folder / f"{stem} - totals.xlsx"

    @staticmethod
    def with_suffix(text: str) -> Path:
        """A name typed without .xlsx or .csv is saved as a workbook."""
        path = Path(text)
        return path if path.suffix.lower() in SUFFIXES else path.with_name(path.name + ".xlsx")


class TableSaver(QObject):
    """Writes a table on a thread (a million rows take seconds); says how it went."""

    saved = Signal(str)  # the path written
    failed = Signal(str)  # why not, in a sentence

    def __init__(self, background: Background, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._background = background

    def save(self, table: TotalsTable, order: numpy.ndarray, path: Path) -> None:
        self._background.run(lambda: save_table(table, path, order),
                             lambda _: self.saved.emit(str(path)),
                             lambda error: self.failed.emit(_why_not(path, error)))


def _why_not(path: Path, error: Exception) -> str:
    if isinstance(error, CannotSave):
        return str(error)
    if isinstance(error, OSError):
        return f"Cannot write {path.name} in {path.parent}: {error.strerror or error}."
    log.error("saving %s failed", path, exc_info=error)
    return f"Could not save {path.name}: {error}."
