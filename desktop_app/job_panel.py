"""Shows one job: summary, output path with its actions, rejected rows, the totals table."""

from __future__ import annotations

import html
import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton,
                               QTableView, QVBoxLayout, QWidget)

from desktop_app.sort_arrows import SpreadsheetSortArrows
from desktop_app.bar_delegate import ShareBarDelegate
from desktop_app.history_model import STATE_NAMES, started_text
from desktop_app.totals_model import COLUMN_DEPARTMENT, TotalsModel
from reports.table import TotalsTable
from salesapi import sales_pb2
from wording.quantities import format_count, format_duration

_SAMPLES_SHOWN = 5
# Departments of a job's reply put in the table straight away, before all are loaded.
_SHOWN_AT_ONCE = 2_000
# Combined files: the department column's width, and at most a file column's (before its
# numbers need more).
_NAME_WIDTH = 200
_FILE_COLUMN_WIDTH = 130
_BANNER_STYLES = {
    "error": "background:#fdecea; color:#611a15; border:1px solid #f5c2c0;",
    "warning": "background:#fff4e5; color:#663c00; border:1px solid #ffd8a8;",
    "info": "background:#e8f1fb; color:#0b3a66; border:1px solid #b9d3ee;",
}


def banner(kind: str) -> QLabel:
    """A rounded message strip; hidden until it has something to say."""
    label = QLabel()
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setStyleSheet(f"QLabel {{ {_BANNER_STYLES[kind]} border-radius:4px; padding:8px; }}")
    label.hide()
    return label


class JobPanel(QWidget):
    """The result of the current or selected job."""

    path_copied = Signal(str)
    # The user asks for the job's file: (rejected rows?, to open it or to show its folder).
    file_wanted = Signal(bool, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No results yet")
        self.title.setStyleSheet("font-size: 15px; font-weight: 600;")
        self.summary = QLabel("Choose a sales CSV and press Process to see the totals per "
                              "department here.")
        self.summary.setWordWrap(True)
        self.error_banner = banner("error")
        self.error_banner.setAccessibleName("Error message")
        self.rejected_banner = banner("warning")
        self.rejected_banner.setAccessibleName("Rejected rows")
        self.open_rejected_button = QPushButton("Open rejected rows…")
        self.open_rejected_button.setAccessibleName("Open the rejected rows file")
        self.open_rejected_button.clicked.connect(lambda: self.file_wanted.emit(True, "open"))

        self.output_path = QLineEdit()
        self.output_path.setReadOnly(True)
        self.output_path.setPlaceholderText("The output file's path appears here")
        self.output_path.setAccessibleName("Output file path")
        self.open_button = QPushButton("Open file")
        self.open_button.setAccessibleName("Open the output file")
        self.folder_button = QPushButton("Show in folder")
        self.folder_button.setAccessibleName("Show the output file in its folder")
        self.copy_button = QPushButton("Copy path")
        self.copy_button.setAccessibleName("Copy the output file path")
        self.open_button.clicked.connect(lambda: self.file_wanted.emit(False, "open"))
        self.folder_button.clicked.connect(lambda: self.file_wanted.emit(False, "folder"))
        self.copy_button.clicked.connect(self._copy_path)

        self.model = TotalsModel(self)
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
        self._arrows = SpreadsheetSortArrows()
        self.table.horizontalHeader().setStyle(self._arrows)
        self.table.setAccessibleName("Totals per department")
        self.table.setModel(self.model)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(self.model.total_column, Qt.SortOrder.DescendingOrder)
        self.table.setItemDelegate(ShareBarDelegate(self.table))
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(26)
        self.table.horizontalHeader().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.model.modelReset.connect(self._fit_columns)
        self._fit_columns()

        rejected_row = QHBoxLayout()
        rejected_row.addWidget(self.rejected_banner, 1)
        rejected_row.addWidget(self.open_rejected_button, 0, Qt.AlignmentFlag.AlignTop)
        self._output_label = QLabel("Output file:")
        path_row = QHBoxLayout()
        path_row.addWidget(self._output_label)
        path_row.addWidget(self.output_path, 1)
        actions_row = QHBoxLayout()
        for button in (self.open_button, self.folder_button, self.copy_button):
            actions_row.addWidget(button)
        actions_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.summary)
        layout.addWidget(self.error_banner)
        layout.addLayout(rejected_row)
        layout.addLayout(path_row)
        layout.addLayout(actions_row)
        layout.addWidget(self.table, 1)
        self._summary_parts: list[str] = []
        self._when = ""
        self._complete = False
        self.clear()

    def _fit_columns(self) -> None:
        """Names and bars share the room; each number column is as wide as its widest number,
        worked out from the column's extremes (asking the view to size it to its contents
        would read a thousand rows' cells again on every sort). A file's column is no wider
        than that for its long name: the header shows it cut, its tooltip in full."""
        header = self.table.horizontalHeader()
        metrics = self.table.fontMetrics()
        several = self.model.columnCount() > 3
        for column in range(self.model.columnCount()):
            if column == self.model.share_column or (column == COLUMN_DEPARTMENT
                                                     and not several):
                header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
                continue
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
            if column == COLUMN_DEPARTMENT:
                header.resizeSection(column, _NAME_WIDTH)
                continue
            widest = max((metrics.horizontalAdvance(text) for text in
                          self.model.widest_texts(column)), default=0)
            title = self.model.headerData(column, Qt.Orientation.Horizontal)
            header.resizeSection(column, max(widest + 24, min(
                metrics.horizontalAdvance(title) + 40, _FILE_COLUMN_WIDTH)))
        header.setSortIndicator(*self.model.sorted_by)

    def clear(self, title: str = "No results yet", summary: str | None = None) -> None:
        """Empties the panel."""
        self.title.setText(title)
        if summary is not None:
            self.summary.setText(summary)
        self.error_banner.hide()
        self.rejected_banner.hide()
        self.open_rejected_button.hide()
        self._set_output("")
        self._complete = False
        self.model.set_rows([])

    def show_error(self, title: str, message: str) -> None:
        """A job that did not complete: the reason in plain words."""
        self.clear(title, "")
        self.summary.hide()
        self.error_banner.setText(message)
        self.error_banner.show()

    def show_job(self, job: sales_pb2.Job, seconds: float | None = None,
                 files_here: bool = True) -> None:
        """A job from the server, completed or not."""
        state = STATE_NAMES.get(job.state, "Unknown")
        name = job.filename or "(no name)"
        when = started_text(job)
        if job.state != sales_pb2.JOB_STATE_COMPLETED:
            self.show_error(f"{name} — {state.lower()}",
                            job.error or f"This job is {state.lower()}.")
            return
        self.clear(f"{name} — totals per department")
        if seconds is None and job.HasField("finished_at"):
            seconds = (job.finished_at.ToNanoseconds() - job.created_at.ToNanoseconds()) / 1e9
        parts = [format_count(job.department_count or len(job.departments), "department"),
                 f"{format_count(job.rows_processed, 'row')} summed",
                 f"{format_count(job.rows_rejected, 'row')} rejected"]
        if seconds is not None:
            parts.append(format_duration(seconds))
        self._summary_parts = parts
        self._when = when
        self._complete = job.departments_complete and len(job.departments) <= _SHOWN_AT_ONCE
        self.summary.show()
        # The first ones at once (a screenful and more, without a pause); every one when
        # loaded (show_table).
        self.model.set_rows([(d.department, d.total_sales)
                             for d in job.departments[:_SHOWN_AT_ONCE]])
        self._show_summary()
        self._set_output(job.output_path, files_here)
        self._output_label.setText("Output file:")
        if job.rows_rejected:
            self._show_rejected(job)

    def show_table(self, table: TotalsTable) -> None:
        """Every department of the job shown, once loaded."""
        self.model.set_table(table)
        self._complete = True
        self._show_summary()

    def show_combined(self, jobs: list[sales_pb2.Job], table: TotalsTable,
                      not_processed: list[tuple[str, str]], seconds: float | None) -> None:
        """Several files' totals side by side, with a Total column; the files that could not
        be processed, and each file's rejected rows, above the table."""
        self.clear(f"{format_count(len(jobs), 'file')} — totals per department")
        parts = [format_count(len(table), "department"),
                 f"{format_count(sum(job.rows_processed for job in jobs), 'row')} summed",
                 f"{format_count(sum(job.rows_rejected for job in jobs), 'row')} rejected"]
        if seconds is not None:
            parts.append(format_duration(seconds))
        self._summary_parts, self._when, self._complete = parts, "", True
        self.summary.show()
        self.model.set_table(table)
        self._show_summary()
        if not_processed:
            self.error_banner.setText("<br>".join(
                f"<b>{html.escape(name, quote=False)}</b> was not processed: "
                f"{html.escape(message, quote=False)}" for name, message in not_processed))
            self.error_banner.show()
        rejected = [job for job in jobs if job.rows_rejected]
        if rejected:
            self.rejected_banner.setText("<br>".join(
                f"<b>{html.escape(job.filename, quote=False)}</b>: "
                f"{format_count(job.rows_rejected, 'row')} left out"
                + (f" (line {job.rejected_samples[0].line}: "
                   f"{html.escape(job.rejected_samples[0].reason, quote=False)})"
                   if job.rejected_samples else "") for job in rejected)
                + "<br>History shows each file with its rejected rows.")
            self.rejected_banner.show()

    def show_saved(self, path: str) -> None:
        """The table was saved to path: Open file and Show in folder act on that file now."""
        self._set_output(path)
        self._output_label.setText("Saved to:")

    @property
    def is_complete(self) -> bool:
        """Every department of what is shown is in the table (it can be saved)."""
        return self._complete and self.model.rowCount() > 0

    def _show_summary(self) -> None:
        """The job's figures, and the grand total once every department is in the table."""
        parts = list(self._summary_parts)
        if self._complete:
            parts.insert(1, f"all departments together: {self.model.grand_total:,} sales")
        if self._when:
            parts.append(f"started {self._when}")
        # Lines break between the figures, never inside one ("1.0 / s").
        self.summary.setText(" · ".join(part.replace(" ", "\u00a0") for part in parts))

    def _show_rejected(self, job: sales_pb2.Job) -> None:
        lines = [f"<b>{format_count(job.rows_rejected, 'row')} could not be read and "
                 f"{'was' if job.rows_rejected == 1 else 'were'} left out of the totals.</b>"]
        for sample in job.rejected_samples[:_SAMPLES_SHOWN]:
            lines.append(f"Line {sample.line}: {html.escape(sample.reason, quote=False)}")
        if job.rows_rejected > _SAMPLES_SHOWN:
            lines.append("The rejected rows file lists every one.")
        self.rejected_banner.setText("<br>".join(lines))
        self.rejected_banner.show()
        self.open_rejected_button.setVisible(bool(job.rejected_path))

    def _set_output(self, path: str, files_here: bool = True) -> None:
        self.output_path.setText(path)
        self.output_path.setCursorPosition(0)
        self.output_path.setToolTip(path)
        remote = bool(path) and not (files_here and os.path.exists(path))
        for button in (self.open_button, self.folder_button):
            button.setToolTip("The file is on the server's computer: a copy is downloaded "
                              "first." if remote else "")
        self.copy_button.setEnabled(bool(path))
        for widget in (self._output_label, self.output_path, self.open_button,
                       self.folder_button, self.copy_button):
            widget.setVisible(bool(path))

    def _copy_path(self) -> None:
        QGuiApplication.clipboard().setText(self.output_path.text())
        self.path_copied.emit(self.output_path.text())

