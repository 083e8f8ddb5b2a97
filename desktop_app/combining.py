"""Several files' totals added up side by side, once every department of each is loaded."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from desktop_app.job_results import JobResults
from reports.table import TotalsTable
from salesapi import sales_pb2


class Combiner(QObject):
    """Loads each job's departments (JobResults), then builds their combined table on a thread;
    a new start() drops the combination before it."""

    # The jobs, their TotalsTable (a column per file), and what start() was told besides:
    # the files not processed, as (name, why), and the seconds the uploads took.
    combined = Signal(object, object, object, float)
    failed = Signal(str)

    def __init__(self, results: JobResults, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._results = results
        self._tables: dict[str, TotalsTable | None] = {}
        self._jobs: list[sales_pb2.Job] = []
        self._not_processed: list[tuple[str, str]] = []
        self._seconds = 0.0
        results.departments_loaded.connect(self._loaded)

    def start(self, jobs: list[sales_pb2.Job], not_processed: list[tuple[str, str]],
              seconds: float) -> None:
        self._jobs = list(jobs)
        self._not_processed, self._seconds = not_processed, seconds
        self._tables = {job.job_id: None for job in jobs}
        self._results.load_departments(jobs)

    def stop(self) -> None:
        """Forgets the combination under way (another job is shown)."""
        self._jobs, self._tables = [], {}

    def is_loading(self, job_id: str) -> bool:
        return job_id in self._tables

    def _loaded(self, job_id: str, table: TotalsTable) -> None:
        if job_id not in self._tables:
            return
        self._tables[job_id] = table
        if any(table is None for table in self._tables.values()):
            return
        jobs, not_processed, seconds = self._jobs, self._not_processed, self._seconds
        files = [(job.filename, self._tables[job.job_id]) for job in jobs]
        self._tables = {}

        def build() -> TotalsTable:
            table = TotalsTable.combined(files)
            table.order_by(None)
            return table

        def built(table: TotalsTable) -> None:
            if jobs is self._jobs:  # not replaced meanwhile
                self.combined.emit(jobs, table, not_processed, seconds)

        self._results.background.run(build, built, lambda exc: self.failed.emit(
            f"Could not add the files up: {exc}"))
