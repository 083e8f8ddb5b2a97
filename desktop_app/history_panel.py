"""The list of earlier jobs; selecting one asks the window to show it."""

from __future__ import annotations

from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableView,
                               QVBoxLayout, QWidget)

from desktop_app.sort_arrows import SpreadsheetSortArrows
from desktop_app.history_model import COLUMN_FILE, HistoryModel
from salesapi import sales_pb2


class HistoryPanel(QWidget):
    """Jobs newest first, from the server's ListJobs."""

    job_selected = Signal(str)
    refresh_requested = Signal()
    delete_requested = Signal(object)  # sales_pb2.Job the user wants removed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = HistoryModel(self)
        self.table = QTableView()
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move inside it
        self._arrows = SpreadsheetSortArrows()
        self.table.horizontalHeader().setStyle(self._arrows)
        self.table.setAccessibleName("Earlier jobs")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setMinimumWidth(280)
        self.setMaximumWidth(600)  # on a wide screen the room goes to the totals
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMN_FILE, QHeaderView.ResizeMode.Stretch)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setAccessibleName("Refresh the job history")
        self.refresh_button.clicked.connect(self.refresh_requested)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setAccessibleName("Delete the selected job")
        self.delete_button.setToolTip("Delete the selected job and its files (Delete key)")
        self.delete_button.setEnabled(False)
        self.delete_button.clicked.connect(self._delete_selected)
        QShortcut(QKeySequence.StandardKey.Delete, self.table, activated=self._delete_selected,
                  context=Qt.ShortcutContext.WidgetShortcut)
        title = QLabel("History")
        title.setStyleSheet("font-size: 15px; font-weight: 600;")
        top = QHBoxLayout()
        top.addWidget(title, 1)
        top.addWidget(self.delete_button)
        top.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)

    def set_jobs(self, jobs: Sequence[sales_pb2.Job], current: str | None = None) -> None:
        """Shows jobs, keeping `current` selected without announcing it as a new choice."""
        blocked = self.table.selectionModel().blockSignals(True)
        self.model.set_jobs(jobs)
        row = self.model.row_of(current) if current else -1
        if row >= 0:
            self.table.selectRow(row)
        self.table.selectionModel().blockSignals(blocked)
        self.delete_button.setEnabled(self.table.isEnabled() and self._selected() is not None)

    def set_enabled(self, enabled: bool) -> None:
        """Off while files are processed (choosing a job would replace their results)."""
        self.table.setEnabled(enabled)
        self.delete_button.setEnabled(enabled and self._selected() is not None)

    def _selected(self) -> sales_pb2.Job | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.job(rows[0].row()) if rows else None

    def _delete_selected(self) -> None:
        job = self._selected()
        if job is not None and self.table.isEnabled():
            self.delete_requested.emit(job)

    def _row_changed(self, current, _previous) -> None:
        self.delete_button.setEnabled(current.isValid() and self.table.isEnabled())
        if current.isValid():
            self.job_selected.emit(self.model.job_id(current.row()))
