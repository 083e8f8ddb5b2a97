"""The main window: lays out the panels and wires them to the uploads and the server."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from PySide6.QtCore import QStandardPaths, QTimer, QUrl, Signal
from PySide6.QtGui import (QCloseEvent, QDesktopServices, QDragEnterEvent, QDragLeaveEvent,
                           QDropEvent, QKeySequence, QShortcut)
from PySide6.QtWidgets import (QFileDialog, QMainWindow, QMessageBox, QPushButton, QSplitter,
                               QVBoxLayout, QWidget)

from desktop_app.api_client import ApiClient
from desktop_app.event_loop import WindowLoop
from desktop_app.file_area import FileArea
from desktop_app.health_label import HealthLabel
from desktop_app.history_panel import HistoryPanel
from desktop_app.job_panel import JobPanel
from desktop_app.job_results import JobResults
from desktop_app.menus import build_menus
from desktop_app.combining import Combiner
from desktop_app.saving import SaveTarget, TableSaver
from desktop_app.server_runner import EmbeddedServer
from desktop_app.upload_flow import UploadFlow
from reports.table import TotalsTable
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import DEFAULT_CHUNK_SIZE, channel_credentials, open_channel
from wording.quantities import format_count

log = logging.getLogger(__name__)

# Files handed over by launches this close together are chosen together.
_SAME_MOMENT_SECONDS = 3.0
# A cancelled upload's job is recorded as such a moment after the call ends.
_RECORDED_MS = 1000
# A cancelled upload ends in a moment; closing does not wait longer than this for it.
_CLOSE_WAIT_SECONDS = 10.0
_TITLE = "Sales CSV Processor"


class MainWindow(QMainWindow):
    """Pick files, stream them with a progress bar, read and save the totals and the history."""

    upload_finished = Signal(object)  # sales_pb2.Job; one file's upload has ended
    upload_failed = Signal(str)
    upload_cancelled = Signal()
    files_combined = Signal(object)  # TotalsTable of several files, now on screen
    history_loaded = Signal()
    job_shown = Signal(str)  # a job from the history is on screen
    departments_loaded = Signal(str)  # every department of the job on screen is in its table
    file_shown = Signal(str)  # a result file, on this computer, was opened (or its folder)
    table_saved = Signal(str)  # the path the totals were saved to
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
        self._shown: list[sales_pb2.Job] = []  # the job (or jobs, combined) on screen
        self._save_target = SaveTarget()
        self._saver = TableSaver(self.results.background, self)
        self._combiner = Combiner(self.results, self)
        self._job_id = ""
        self._closed = False

        self.setWindowTitle(_TITLE)
        self.setAcceptDrops(True)
        room = self.screen().availableGeometry()  # no bigger than a small screen
        self.resize(min(1180, room.width()), min(720, room.height()))
        self._pending_files: list[str] = []  # handed over by another launch while busy
        self._handed_at = -1e9
        self._build()
        self._wire()
        self._set_busy(False)
        self.check_health()
        self.refresh_history()

    # -- layout --------------------------------------------------------------------------------

    def _build(self) -> None:
        self.file_area = FileArea()
        area = self.file_area
        self.choose_button, self.start_button = area.choose_button, area.start_button
        self.cancel_button, self.file_label = area.cancel_button, area.file_label
        self.progress, self.progress_label = area.progress, area.progress_label
        self.file_message = area.file_message
        self.job_panel = JobPanel()
        self.history_panel = HistoryPanel()
        self._uploads = UploadFlow(self._loop, self.address, self._chunk_size, self._token,
                                   self._credentials, area, self.job_panel, self)
        splitter = QSplitter()
        splitter.addWidget(self.job_panel)
        splitter.addWidget(self.history_panel)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 1)  # extra room goes mostly to the totals
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([700, 460])
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(12, 12, 12, 8)
        layout.addWidget(area)
        layout.addWidget(splitter, 1)
        self.setCentralWidget(central)

        self.server_label = HealthLabel(self._channel, self._api, self.address,
                                        built_in=self._server is not None)
        self.server_label.checked.connect(self.health_checked)
        self.statusBar().addPermanentWidget(self.server_label)

        panel, history = self.job_panel, self.history_panel
        order = [self.choose_button, self.start_button, self.cancel_button, panel.table,
                 panel.output_path, panel.open_button, panel.folder_button, panel.copy_button,
                 panel.open_rejected_button, history.table, history.delete_button,
                 history.refresh_button]
        for first, second in zip(order, order[1:]):
            self.setTabOrder(first, second)

    def _wire(self) -> None:
        self.save_action = build_menus(self)
        self.choose_button.clicked.connect(self.choose_file)
        self.start_button.clicked.connect(self.start_upload)
        self.cancel_button.clicked.connect(self.cancel_upload)
        for key in ("Return", "Enter"):
            QShortcut(QKeySequence(key), self, activated=self._enter_pressed)
        QShortcut(QKeySequence("Escape"), self, activated=self.cancel_upload)
        self.history_panel.job_selected.connect(self.show_history_job)
        self.history_panel.refresh_requested.connect(self.refresh_history)
        self.history_panel.delete_requested.connect(self.delete_job)
        self.job_panel.path_copied.connect(self._path_copied)
        self.job_panel.file_wanted.connect(self._fetch_file)
        self.results.file_ready.connect(self._show_file)
        self.results.failed.connect(self._say)
        self.results.departments_loaded.connect(self._departments_arrived)
        self._combiner.combined.connect(self._show_combined)
        self._combiner.failed.connect(self._say)
        self._saver.saved.connect(self._saved)
        self._saver.failed.connect(self._not_saved)
        uploads = self._uploads
        uploads.job_started.connect(self._on_job_started)
        uploads.finished.connect(self._on_one_finished)
        uploads.failed.connect(self.upload_failed)
        uploads.cancelled.connect(self.upload_cancelled)
        uploads.several_done.connect(self._on_several_done)
        uploads.ended.connect(self._on_upload_ended)

    def _say(self, message: str, milliseconds: int = 10_000) -> None:
        self.statusBar().showMessage(message, milliseconds)

    def _path_copied(self, path: str) -> None:
        self._say(f"Copied {path}", 4000)

    def confirm_close_during_upload(self) -> bool:
        """Whether to close while files are being processed (they would not be)."""
        return self._ask_yes_no("Files are still being processed. Close anyway? They will "
                                "not be processed.")

    def confirm_delete(self, job: sales_pb2.Job) -> bool:
        """Whether to delete job from the history, with its files. Tests replace this."""
        files = ", with its totals file" if job.output_path else ""
        return self._ask_yes_no(f"Delete {job.filename or 'this job'} from the history{files}? "
                                "This cannot be undone.")

    def _ask_yes_no(self, question: str) -> bool:
        answer = QMessageBox.question(
            self, _TITLE, question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    # -- results -------------------------------------------------------------------------------

    def _show_result(self, job: sales_pb2.Job, seconds: float | None = None) -> None:
        """A job on screen: its first departments at once, every one once loaded."""
        self._shown = [job]
        self._combiner.stop()
        self.job_panel.show_job(job, seconds, files_here=self._server is not None)
        self._update_save()
        if job.state == sales_pb2.JOB_STATE_COMPLETED:
            if not job.departments_complete:
                self._say(f"Loading all {job.department_count:,} departments…", 0)
            self.results.load_departments([job])

    def _departments_arrived(self, job_id: str, table: TotalsTable) -> None:
        if self._combiner.is_loading(job_id) or [job.job_id for job in self._shown] != [job_id]:
            return  # the combiner's, or a job no longer shown
        if not self.job_panel.is_complete:
            self.job_panel.show_table(table)
            self._say(f"All {len(table):,} departments loaded.", 4000)
        self._update_save()
        self.departments_loaded.emit(job_id)

    def _fetch_file(self, rejected: bool, purpose: str) -> None:
        saved = self._save_target.saved
        if not rejected and saved and self.job_panel.output_path.text() == saved:
            self._show_file(purpose, saved)
        elif len(self._shown) == 1:
            self.results.fetch_file(self._shown[0], rejected, purpose)

    def _show_file(self, purpose: str, path: str) -> None:
        shown = os.path.dirname(path) if purpose == "folder" else path
        if not self.open_url(QUrl.fromLocalFile(shown)):
            what = ("this folder" if purpose == "folder"
                    else f"{Path(path).suffix.lstrip('.').upper()} files")
            self._say(f"No program on this computer opens {what}. The file is in "
                      f"{os.path.dirname(path)}.", 15_000)
        self.file_shown.emit(path)

    # -- saving --------------------------------------------------------------------------------

    def ask_where_to_save(self, suggested: Path) -> str:
        """Asks where to save the totals; '' when the user changes their mind. Tests replace
        this."""
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the totals", str(suggested),
            "Excel workbook (*.xlsx);;CSV file (*.csv)")
        return path

    def save_as(self) -> None:
        """Saves the table on screen (all its departments, as sorted) as Excel or CSV."""
        if not self.job_panel.is_complete:
            self._say("There are no totals to save yet.", 5000)
            return
        target = self.ask_where_to_save(self._save_target.suggest(
            self._shown, self.file_area.paths))
        if not target:
            return
        path = self._save_target.with_suffix(target)
        self._say(f"Saving {path.name}…", 0)
        self._saver.save(self.job_panel.model.table, self.job_panel.model.shown_order(), path)

    def _saved(self, path: str) -> None:
        self._save_target.saved = path
        self.job_panel.show_saved(path)
        self._say(f"Saved {Path(path).name} in {Path(path).parent}.", 10_000)
        self.table_saved.emit(path)

    def _not_saved(self, reason: str) -> None:
        self.statusBar().clearMessage()
        QMessageBox.warning(self, _TITLE, reason)

    def _update_save(self) -> None:
        self.save_action.setEnabled(self.job_panel.is_complete)

    # -- choosing files ------------------------------------------------------------------------

    def ask_for_files(self) -> list[str]:
        """Asks the user for CSV files; [] when they change their mind. Tests replace this."""
        paths = self.file_area.paths
        start = str(paths[0].parent) if paths else os.path.expanduser("~")
        chosen, _ = QFileDialog.getOpenFileNames(
            self, "Choose sales CSV files", start,
            "CSV files (*.csv *.txt *.tsv);;All files (*)")
        return chosen

    def choose_file(self) -> None:
        if self.is_uploading():
            return
        chosen = self.ask_for_files()
        if chosen:
            self.select_files(chosen)

    def select_file(self, path: str | os.PathLike) -> None:
        """Makes path (a file, or a folder of CSV files) the one to process."""
        self.select_files([path])

    def select_files(self, paths: list) -> None:
        """Makes paths the files to process, or says why they cannot be."""
        if self.is_uploading():
            return
        self.statusBar().clearMessage()  # "… will be chosen when …" and the like
        if self.file_area.select(paths):
            self.start_button.setFocus()
        self._set_busy(False)

    def _enter_pressed(self) -> None:
        """Enter processes the chosen files from the file area only: pressed on another button
        (Open file, a History row...) it must not start the same files again."""
        if self.focusWidget() in (None, self.start_button, self.choose_button):
            self.start_upload()
        elif isinstance(self.focusWidget(), QPushButton):
            self.focusWidget().click()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and all(url.isLocalFile() for url in urls) and not self.is_uploading():
            self.file_area.show_drop_hover(True)
            event.acceptProposedAction()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self.file_area.show_drop_hover(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self.file_area.show_drop_hover(False)
        self.select_files([url.toLocalFile() for url in event.mimeData().urls()])
        event.acceptProposedAction()

    def bring_forward(self, files: list[str]) -> None:
        """Another launch of the app handed over: show this window and choose the files it
        was given (once the files being processed are done)."""
        self.setWindowState(self.windowState() & ~self.windowState().WindowMinimized)
        self.show()
        self.raise_()
        self.activateWindow()
        if files and time.monotonic() - self._handed_at < _SAME_MOMENT_SECONDS:
            # Launches of the same moment (a file manager opening several files): together.
            files = [*(self._pending_files or [str(p) for p in self.file_area.paths]), *files]
        if files:
            self._handed_at = time.monotonic()
        if files and self.is_uploading():
            self._pending_files = files
            self._say(f"{format_count(len(files), 'file')} will be chosen when the files being "
                      "processed are done.", 0)
        elif files:
            self.select_files(files)

    # -- uploading -----------------------------------------------------------------------------

    def is_uploading(self) -> bool:
        return self._uploads.is_running()

    def start_upload(self) -> None:
        """Streams the chosen files, one job each; the upload flow reports back as signals."""
        if self.is_uploading() or not self.file_area.paths:
            return
        self._job_id = ""
        self._shown = []
        self._update_save()
        self._set_busy(True)
        self._uploads.start()

    def cancel_upload(self) -> None:
        """Cancels the upload; the flow reports back when the server has let go."""
        if self.is_uploading():
            self._uploads.cancel()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText("Cancelling…")

    def _on_job_started(self, job_id: str) -> None:
        self._job_id = job_id
        self.refresh_history()

    def _on_one_finished(self, job: sales_pb2.Job, seconds: float) -> None:
        self._show_result(job, seconds)
        self.upload_finished.emit(job)

    def _on_several_done(self, done: list[sales_pb2.Job], not_processed: list[tuple[str, str]],
                         seconds: float) -> None:
        self._shown = done
        self.job_panel.clear(f"{format_count(len(done), 'file')} — adding up…", "")
        self._say(f"Adding up {format_count(len(done), 'file')}…", 0)
        self._combiner.start(done, not_processed, seconds)

    def _on_upload_ended(self, cancelled: bool) -> None:
        self._set_busy(False)
        self.refresh_history()
        if cancelled:  # the server records the cancellation a moment later
            QTimer.singleShot(_RECORDED_MS, self.refresh_history)
        if self._pending_files:
            files, self._pending_files = self._pending_files, []
            self.select_files(files)

    def _show_combined(self, jobs: list[sales_pb2.Job], table: TotalsTable,
                       not_processed: list[tuple[str, str]], seconds: float) -> None:
        if self._shown != jobs:
            return
        self.job_panel.show_combined(jobs, table, not_processed, seconds)
        self._update_save()
        self._say("Added up. File ▸ Save the totals as… (Ctrl+S) keeps this table.", 8000)
        self.files_combined.emit(table)

    def _set_busy(self, busy: bool) -> None:
        self.file_area.set_busy(busy)
        self.history_panel.set_enabled(not busy)
        self.server_label.set_busy(busy)
        self.cancel_action.setEnabled(busy)

    # -- history and health --------------------------------------------------------------------

    def refresh_history(self) -> None:
        self._api.call(self._stub.ListJobs, sales_pb2.ListJobsRequest(limit=200),
                       self._show_history, self._history_failed)

    def _show_history(self, reply: sales_pb2.ListJobsResponse) -> None:
        self.history_panel.set_jobs(reply.jobs, current=self._job_id)
        self.history_loaded.emit()

    def _history_failed(self, message: str) -> None:
        self._say(f"Could not load the history: {message}", 8000)

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
        self.file_area.show_outcome(f"Showing {job.filename or 'an earlier file'} from the "
                                    "history. Press Process to process the chosen files.",
                                    False)
        self._show_result(job)
        self.job_shown.emit(job.job_id)

    def delete_job(self, job: sales_pb2.Job) -> None:
        """Removes an earlier job and its files, once the user says yes."""
        if self.is_uploading() or not self.confirm_delete(job):
            return

        def deleted(_reply) -> None:
            if [shown.job_id for shown in self._shown] == [job.job_id]:
                self._shown = []
                self.job_panel.clear("No results yet", "")
                self.file_area.show_outcome("", False)
                self._update_save()
            self._say(f"Deleted {job.filename or 'the job'} from the history.", 6000)
            self.refresh_history()

        self._api.call(self._stub.DeleteJob, sales_pb2.DeleteJobRequest(job_id=job.job_id),
                       deleted, lambda message: self._say(message, 10_000))

    @property
    def storage_folder(self) -> Path | None:
        """Where the built-in server keeps history and results; None with another server."""
        return None if self._server is None else self._server.config.storage_dir.resolve()

    def check_health(self) -> None:
        """Asks the server's health check now (the status line asks every 5 s)."""
        self.server_label.check()

    # -- closing -------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        """Asks first while files are being processed; then cancels the upload and waits for
        it to end, and stops the embedded server."""
        if not self._closed and self.is_uploading() and not self.confirm_close_during_upload():
            event.ignore()
            return
        self._closed = True
        self.server_label.stop()
        if not self._uploads.stop(_CLOSE_WAIT_SECONDS):
            log.warning("the upload did not end within %.0f s of closing", _CLOSE_WAIT_SECONDS)
        self.results.background.wait()
        self._channel.close()
        if self._server is not None:
            self._server.stop()
        if self._own_loop is not None:
            self._own_loop.stop()
        super().closeEvent(event)
