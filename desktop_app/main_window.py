"""The main window: lays out the panels and wires them to the upload worker and the server."""

from __future__ import annotations

import html
import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths, QUrl, Signal
from PySide6.QtGui import (QCloseEvent, QDesktopServices, QDragEnterEvent, QDropEvent,
                           QKeySequence, QShortcut)
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QMainWindow, QMessageBox,
                               QProgressBar, QPushButton, QSplitter, QVBoxLayout, QWidget)

from desktop_app.api_client import ApiClient
from desktop_app.event_loop import WindowLoop
from desktop_app.history_panel import HistoryPanel
from desktop_app.job_panel import JobPanel, banner
from desktop_app.health_label import HealthLabel
from desktop_app.job_results import JobResults
from desktop_app.menus import build_menus
from desktop_app.server_runner import EmbeddedServer
from desktop_app.upload_worker import UploadWorker
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import DEFAULT_CHUNK_SIZE, channel_credentials, open_channel, readable_size
from wording.quantities import format_bytes, format_duration

log = logging.getLogger(__name__)

_NO_FILE = ("No file chosen. Click “Choose file…”, press Ctrl+O, or drop a CSV file on this "
            "window.")
_PROGRESS_STEPS = 1000
# Speed and time left are shown once this much time has passed, when they mean something.
_MEASURABLE_SECONDS = 0.5
# A cancelled upload ends in a moment; closing does not wait longer than this for it.
_CLOSE_WAIT_SECONDS = 10.0


class MainWindow(QMainWindow):
    """Pick a file, stream it with a progress bar, read the totals and the history."""

    upload_finished = Signal(object)  # sales_pb2.Job; emitted once the upload has ended
    upload_failed = Signal(str)
    upload_cancelled = Signal()
    history_loaded = Signal()
    job_shown = Signal(str)  # a job from the history is on screen
    departments_loaded = Signal(str)  # every department of the job on screen is in its table
    file_shown = Signal(str)  # a result file, on this computer, was opened (or its folder)
    health_checked = Signal(bool)

    def __init__(self, address: str, server: EmbeddedServer | None = None,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, token: str | None = None,
                 ca_cert: str | None = None, loop: WindowLoop | None = None,
                 download_folder: Path | None = None) -> None:
        """With an embedded server, pass the loop it serves on (see WindowLoop); without a
        loop the window makes one of its own. Closing the window stops the embedded server."""
        super().__init__()
        self.address = address
        self._server = server
        self._chunk_size = chunk_size
        self._token = token
        self._credentials = channel_credentials(ca_cert)  # OSError: an unreadable CA file
        self._channel = open_channel(address, token, ca_cert)
        self._own_loop = WindowLoop() if loop is None else None
        self._loop = loop or self._own_loop
        self._stub = sales_pb2_grpc.SalesServiceStub(self._channel)
        self._api = ApiClient(address, self._credentials is not None, self)
        # Files of a server on another computer are downloaded here before they are opened.
        self.results = JobResults(self._stub, self._api, download_folder or Path(
            QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DownloadLocation),
            "Sales CSV"), server_is_here=server is not None, parent=self)
        self.open_url = QDesktopServices.openUrl  # how a file or folder is shown to the user
        self._shown_job: sales_pb2.Job | None = None
        self._path: Path | None = None
        self._worker: UploadWorker | None = None
        self._outcome: tuple[str, object] | None = None
        self._job_id = ""
        self._started = 0.0
        self._closed = False

        self.setWindowTitle("Sales CSV Processor")
        self.setAcceptDrops(True)
        self.resize(1180, 720)
        self._build()
        self._wire()
        self._set_busy(False)
        self.check_health()
        self.refresh_history()

    # -- layout --------------------------------------------------------------------------------

    def _build(self) -> None:
        self.choose_button = QPushButton("Choose file…")
        self.choose_button.setAccessibleName("Choose a sales CSV file")
        self.choose_button.setToolTip("Ctrl+O")
        self.file_label = QLabel(_NO_FILE)
        self.file_label.setAccessibleName("Chosen file")
        self.file_label.setWordWrap(True)
        self.start_button = QPushButton("Process")
        self.start_button.setAccessibleName("Process the chosen file")
        self.start_button.setToolTip("Enter")
        self.start_button.setStyleSheet("QPushButton { font-weight: 600; padding: 4px 18px; }")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel the upload")
        self.cancel_button.setToolTip("Esc")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Upload progress")
        self.progress.setRange(0, _PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress_label = QLabel("")
        self.progress_label.setAccessibleName("Upload progress details")
        self.file_message = banner("error")
        self.file_message.setAccessibleName("File message")
        self.job_panel = JobPanel()
        self.history_panel = HistoryPanel()

        file_row = QHBoxLayout()
        file_row.addWidget(self.choose_button)
        file_row.addWidget(self.file_label, 1)
        file_row.addWidget(self.start_button)
        file_row.addWidget(self.cancel_button)
        splitter = QSplitter()
        splitter.addWidget(self.job_panel)
        splitter.addWidget(self.history_panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([700, 460])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(12, 12, 12, 8)
        layout.addLayout(file_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.file_message)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.server_label = HealthLabel(self._channel, self._api, self.address,
                                        built_in=self._server is not None)
        self.server_label.checked.connect(self.health_checked)
        self.statusBar().addPermanentWidget(self.server_label)

        panel = self.job_panel
        order = [self.choose_button, self.start_button, self.cancel_button, panel.table,
                 panel.output_path, panel.open_button, panel.folder_button, panel.copy_button,
                 panel.open_rejected_button, self.history_panel.table,
                 self.history_panel.refresh_button]
        for first, second in zip(order, order[1:]):
            self.setTabOrder(first, second)

    def _wire(self) -> None:
        build_menus(self)
        self.choose_button.clicked.connect(self.choose_file)
        self.start_button.clicked.connect(self.start_upload)
        self.cancel_button.clicked.connect(self.cancel_upload)
        for key in ("Return", "Enter"):
            QShortcut(QKeySequence(key), self, activated=self._enter_pressed)
        QShortcut(QKeySequence("Escape"), self, activated=self.cancel_upload)
        self.history_panel.job_selected.connect(self.show_history_job)
        self.history_panel.refresh_requested.connect(self.refresh_history)
        self.job_panel.path_copied.connect(
            lambda path: self.statusBar().showMessage(f"Copied {path}", 4000))
        self.job_panel.file_wanted.connect(self._fetch_file)
        self.results.file_ready.connect(self._show_file)
        self.results.failed.connect(lambda message: self.statusBar().showMessage(message, 10000))
        self.results.departments_loaded.connect(self._show_departments)

    def confirm_close_during_upload(self) -> bool:
        """Whether to close while a file is being processed (it would not be processed)."""
        answer = QMessageBox.question(
            self, "Sales CSV Processor",
            "A file is still being processed. Close anyway? It will not be processed.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # -- results -------------------------------------------------------------------------------

    def _show_result(self, job: sales_pb2.Job, seconds: float | None = None) -> None:
        """A job on screen: its first departments at once, every one once loaded."""
        self._shown_job = job
        self.job_panel.show_job(job, seconds, files_here=self._server is not None)
        if job.state == sales_pb2.JOB_STATE_COMPLETED:
            if not job.departments_complete:
                self.statusBar().showMessage(
                    f"Loading all {job.department_count:,} departments…")
            self.results.load_departments(job)

    def _show_departments(self, job_id: str, rows: list) -> None:
        if self._shown_job is None or self._shown_job.job_id != job_id:
            return
        if not self._shown_job.departments_complete:
            self.job_panel.show_rows(rows)
            self.statusBar().showMessage(f"All {len(rows):,} departments loaded.", 4000)
        self.departments_loaded.emit(job_id)

    def _fetch_file(self, rejected: bool, purpose: str) -> None:
        if self._shown_job is not None:
            self.results.fetch_file(self._shown_job, rejected, purpose)

    def _show_file(self, purpose: str, path: str) -> None:
        shown = os.path.dirname(path) if purpose == "folder" else path
        self.open_url(QUrl.fromLocalFile(shown))
        self.file_shown.emit(path)

    # -- choosing a file -----------------------------------------------------------------------

    def ask_for_file(self) -> str:
        """Asks the user for a CSV; '' when they change their mind. Tests replace this."""
        start = str(self._path.parent) if self._path else os.path.expanduser("~")
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a sales CSV", start, "CSV files (*.csv *.txt *.tsv);;All files (*)")
        return path

    def choose_file(self) -> None:
        if self.is_uploading():
            return
        path = self.ask_for_file()
        if path:
            self.select_file(path)

    def select_file(self, path: str | os.PathLike) -> None:
        """Makes path the file to process, or says why it cannot be."""
        if self.is_uploading():
            return
        candidate = Path(os.path.abspath(os.path.expanduser(path)))  # show the real folder
        try:
            size = readable_size(candidate)
        except OSError as exc:
            self._path = None
            self.file_label.setText(_NO_FILE)
            self._show_file_message(f"Cannot read {candidate.name}: {exc.strerror or exc}.")
            self._set_busy(False)
            return
        self._path = candidate
        name = html.escape(candidate.name, quote=False)
        folder = html.escape(str(candidate.parent), quote=False)
        self.file_label.setText(f"<b>{name}</b> — {format_bytes(size)}"
                                f"<br><span style='color:#666'>{folder}</span>")
        self.file_label.setToolTip(str(candidate))
        self._show_file_message("")
        self.progress.setValue(0)
        self.progress_label.setText("Ready. Press Process (or Enter) to start.")
        self._set_busy(False)
        self.start_button.setFocus()

    def _enter_pressed(self) -> None:
        """Enter processes the chosen file from the file area only: pressed on another button
        (Open file, a History row...) it must not start the same file again."""
        if self.focusWidget() in (None, self.start_button, self.choose_button):
            self.start_upload()
        elif isinstance(self.focusWidget(), QPushButton):
            self.focusWidget().click()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile() and not self.is_uploading():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.select_file(event.mimeData().urls()[0].toLocalFile())
        event.acceptProposedAction()

    # -- uploading -----------------------------------------------------------------------------

    def is_uploading(self) -> bool:
        return self._worker is not None

    def start_upload(self) -> None:
        """Streams the chosen file; the worker reports back as signals."""
        if self.is_uploading() or self._path is None:
            return
        self._show_file_message("")
        self._outcome = None
        self._job_id = ""
        self._started = time.monotonic()
        self.job_panel.clear(f"{self._path.name} — processing…", "")
        self.progress.setValue(0)
        self.progress_label.setText("Connecting to the server…")
        worker = UploadWorker(self._loop, self.address, self._path, self._chunk_size,
                              self._token, self._credentials)
        worker.job_started.connect(self._on_job_started)
        worker.progressed.connect(self._on_progress)
        worker.finished.connect(self._on_finished)
        worker.failed.connect(self._on_failed)
        worker.cancelled.connect(self._on_cancelled)
        worker.ended.connect(self._on_upload_ended)
        self._worker = worker
        self._set_busy(True)
        worker.start()

    def cancel_upload(self) -> None:
        """Cancels the RPC; the worker reports back when the server has let go."""
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def _on_job_started(self, job_id: str) -> None:
        self._job_id = job_id
        self.refresh_history()

    def _on_progress(self, sent: int, total: int) -> None:
        self.progress.setValue(_PROGRESS_STEPS if total == 0 else sent * _PROGRESS_STEPS // total)
        elapsed = time.monotonic() - self._started
        text = f"{format_bytes(sent)} of {format_bytes(total)} sent"
        if elapsed >= _MEASURABLE_SECONDS and sent > 0:
            speed = sent / elapsed
            text += f" · {speed / 1e6:.1f} MB/s"
            if sent < total:
                text += f" · about {format_duration((total - sent) / speed)} left"
        self.progress_label.setText(text)

    def _on_finished(self, job: sales_pb2.Job) -> None:
        seconds = time.monotonic() - self._started
        self.progress.setValue(_PROGRESS_STEPS)
        self.progress_label.setText(f"Done: {format_bytes(job.bytes_received)} in "
                                    f"{format_duration(seconds)}.")
        self._show_result(job, seconds)
        self._outcome = ("finished", job)

    def _on_failed(self, message: str) -> None:
        name = self._path.name if self._path else "The file"
        # A full bar next to a refusal reads as success: start it over.
        self.progress.setValue(0)
        self.progress_label.setText("Not processed. The reason is below.")
        self.job_panel.show_error(f"{name} — not processed", message)
        self._outcome = ("failed", message)

    def _on_cancelled(self) -> None:
        self.progress.setValue(0)
        self.progress_label.setText("Cancelled. The server kept nothing from this upload.")
        self.job_panel.clear(f"{self._path.name if self._path else 'Upload'} — cancelled", "")
        self._outcome = ("cancelled", None)

    def _on_upload_ended(self) -> None:
        if self._worker is None:  # closeEvent already waited for it and let it go
            return
        worker, self._worker = self._worker, None
        worker.deleteLater()
        if self._closed:
            return
        self._set_busy(False)
        self.refresh_history()
        kind, value = self._outcome or ("failed", "The upload ended without an answer.")
        if kind == "finished":
            self.upload_finished.emit(value)
        elif kind == "cancelled":
            self.upload_cancelled.emit()
        else:
            self.upload_failed.emit(value)

    def _set_busy(self, busy: bool) -> None:
        self.choose_button.setEnabled(not busy)
        self.start_button.setEnabled(not busy and self._path is not None)
        self.cancel_button.setEnabled(busy)
        self.history_panel.table.setEnabled(not busy)

    def _show_file_message(self, message: str) -> None:
        self.file_message.setText(message)
        self.file_message.setVisible(bool(message))

    # -- history and health --------------------------------------------------------------------

    def refresh_history(self) -> None:
        self._api.call(self._stub.ListJobs, sales_pb2.ListJobsRequest(limit=200),
                       self._show_history, self._history_failed)

    def _show_history(self, reply: sales_pb2.ListJobsResponse) -> None:
        self.history_panel.set_jobs(reply.jobs, current=self._job_id)
        self.history_loaded.emit()

    def _history_failed(self, message: str) -> None:
        self.statusBar().showMessage(f"Could not load the history: {message}", 8000)

    def show_history_job(self, job_id: str) -> None:
        """Shows an earlier job's totals (GetJobStatus)."""
        if self.is_uploading():
            return
        self._job_id = job_id
        self._api.call(self._stub.GetJobStatus, sales_pb2.JobStatusRequest(job_id=job_id),
                       self._show_job, lambda message: self.job_panel.show_error(
                           "Could not load this job", message))

    def _show_job(self, job: sales_pb2.Job) -> None:
        if self.is_uploading() or job.job_id != self._job_id:
            return
        # The strip above says what is shown below: an earlier file, not the one chosen.
        self.progress.setValue(0)
        self.progress_label.setText(f"Showing {job.filename or 'an earlier file'} from the "
                                    "history. Press Process to process the chosen file.")
        self._show_result(job)
        self.job_shown.emit(job.job_id)

    def check_health(self) -> None:
        """Asks the server's health check now (the status line asks every 5 s)."""
        self.server_label.check()

    # -- closing -------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Asks first while a file is being processed; then cancels the upload and waits for it
        to end, and stops the embedded server."""
        if not self._closed and self.is_uploading() and not self.confirm_close_during_upload():
            event.ignore()
            return
        self._closed = True
        self.server_label.stop()
        if self._worker is not None:
            self._worker.cancel()
            if self._worker.wait(_CLOSE_WAIT_SECONDS):
                self._on_upload_ended()
            else:  # still running: keep it (its signals must find it) and say so
                log.warning("the upload did not end within %.0f s of closing",
                            _CLOSE_WAIT_SECONDS)
        self._channel.close()
        if self._server is not None:
            self._server.stop()
        if self._own_loop is not None:
            self._own_loop.stop()
        super().closeEvent(event)
