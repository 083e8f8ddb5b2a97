"""Earlier jobs, newest first, as the server's ListJobs returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from desktop_app.rows_model import Index, RowsModel
from salesapi import sales_pb2

COLUMN_FILE = 0
COLUMN_STARTED = 1
COLUMN_STATE = 2
COLUMN_DEPARTMENTS = 3
HEADERS = ("File", "Started", "State", "Departments")
STATE_NAMES = {
    sales_pb2.JOB_STATE_RUNNING: "Running",
    sales_pb2.JOB_STATE_COMPLETED: "Done",
    sales_pb2.JOB_STATE_FAILED: "Failed",
    sales_pb2.JOB_STATE_CANCELLED: "Cancelled",
}
_STATE_COLOURS = {
    sales_pb2.JOB_STATE_FAILED: QColor("#b3261e"),
    sales_pb2.JOB_STATE_CANCELLED: QColor("#6b6b6b"),
}
JOB_ID_ROLE = Qt.ItemDataRole.UserRole



def started_text(job: sales_pb2.Job) -> str:
    """The start time in local time, `2026-11-29 14:05:09`, or `14:05:09` for today (narrower:
    at 800 x 600 the History's file names need the room)."""
    if not job.HasField("created_at"):
        return ""
    started = datetime.fromtimestamp(job.created_at.ToSeconds())
    if started.date() == datetime.now().date():
        return started.strftime("%H:%M:%S")
    return started.strftime("%Y-%m-%d %H:%M:%S")


class HistoryModel(RowsModel):
    """One row per job."""

    HEADERS = HEADERS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)

    def set_jobs(self, jobs: Sequence[sales_pb2.Job]) -> None:
        """Replaces every row."""
        self.beginResetModel()
        self._rows = list(jobs)
        self.endResetModel()

    def job_id(self, row: int) -> str:
        return self._rows[row].job_id

    def job(self, row: int) -> sales_pb2.Job:
        return self._rows[row]

    def row_of(self, job_id: str) -> int:
        """The row showing job_id, or -1."""
        return next((row for row, job in enumerate(self._rows) if job.job_id == job_id), -1)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        job = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COLUMN_FILE:
                return job.filename or "(no name)"
            if column == COLUMN_STARTED:
                return started_text(job)
            if column == COLUMN_STATE:
                return STATE_NAMES.get(job.state, "Unknown")
            if job.state == sales_pb2.JOB_STATE_COMPLETED:
                return f"{job.department_count:,}"
            return ""
        if role == Qt.ItemDataRole.ForegroundRole and column == COLUMN_STATE:
            return _STATE_COLOURS.get(job.state)
        if role == Qt.ItemDataRole.TextAlignmentRole and column == COLUMN_DEPARTMENTS:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return job.error or job.output_path or job.filename
        if role == JOB_ID_ROLE:
            return job.job_id
        return None
