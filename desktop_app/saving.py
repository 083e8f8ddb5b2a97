"""Where Save as suggests putting the totals, and what it last saved."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths

from salesapi import sales_pb2

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
