"""The chosen files' uploads as the window shows them: the progress strip while they stream, and
how each file ended, in the strip and the job panel."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from desktop_app.event_loop import WindowLoop
from desktop_app.file_area import FileArea
from desktop_app.job_panel import JobPanel
from desktop_app.upload_queue import UploadQueue
from wording.quantities import format_bytes, format_count, format_duration


class UploadFlow(QObject):
    """Streams the file area's files, one job each, and says how they ended; the window shows
    results and keeps the history."""

    job_started = Signal(str)  # a file's job id, as its upload starts
    finished = Signal(object, float)  # the one file's sales_pb2.Job, seconds taken
    failed = Signal(str)  # why nothing was processed
    cancelled = Signal()
    several_done = Signal(list, list, float)  # jobs done, (name, reason) of the others, seconds
    ended = Signal(bool)  # after the signals above; whether the upload was cancelled

    def __init__(self, loop: WindowLoop, address: str, chunk_size: int, token: str | None,
                 credentials, file_area: FileArea, job_panel: JobPanel,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._connection = (loop, address, chunk_size, token, credentials)
        self._area = file_area
        self._panel = job_panel
        self._queue: UploadQueue | None = None
        self._stopped = False

    def is_running(self) -> bool:
        return self._queue is not None

    def start(self) -> None:
        """Streams the file area's files; the signals above tell how it goes."""
        area = self._area
        area.show_message("")
        area.started()
        names = area.paths[0].name if len(area.paths) == 1 else format_count(
            len(area.paths), "file")
        self._panel.clear(f"{names} — processing…", "")
        loop, address, chunk_size, token, credentials = self._connection
        queue = UploadQueue(loop, address, list(area.paths), list(area.sizes), chunk_size,
                            token, credentials, self)
        queue.job_started.connect(self.job_started)
        queue.progressed.connect(self._on_progress)
        queue.ended.connect(self._on_ended)
        self._queue = queue
        queue.start()

    def cancel(self) -> None:
        """Cancels the upload; ended follows once the server has let go."""
        if self._queue is not None:
            self._queue.cancel()

    def stop(self, seconds: float) -> bool:
        """Cancels the upload and waits up to seconds for it to end, saying nothing of it
        (the window is closing); False if it is still running."""
        self._stopped = True
        queue = self._queue
        if queue is None:
            return True
        queue.cancel()
        if not queue.wait(seconds):
            return False  # kept: its signals must find it
        self._queue = None
        queue.deleteLater()
        return True

    def _on_progress(self, sent: int, total: int) -> None:
        queue = self._queue
        current = ""
        if queue is not None and len(queue.paths) > 1:
            current = f"File {len(queue.outcomes)} of {len(queue.paths)}"
        self._area.show_progress(sent, total, current)

    def _on_ended(self) -> None:
        if self._queue is None:  # stop() already let it go
            return
        queue, self._queue = self._queue, None
        queue.deleteLater()
        if self._stopped:
            return
        if len(queue.paths) == 1 or queue.cancelled:
            self._one_file_ended(queue)
        else:
            self._several_files_ended(queue)
        self.ended.emit(queue.cancelled)

    def _one_file_ended(self, queue: UploadQueue) -> None:
        outcome = queue.outcomes[-1] if queue.outcomes else None
        seconds = self._area.elapsed()
        if queue.cancelled or outcome is None:
            self._area.show_outcome("Cancelled. Nothing was kept from this upload.", False)
            self._panel.clear(f"{queue.paths[0].name if len(queue.paths) == 1 else 'Upload'}"
                              " — cancelled", "")
            self.cancelled.emit()
        elif outcome.job is not None:
            self._area.show_outcome(f"Done: {format_bytes(outcome.job.bytes_received)} in "
                                    f"{format_duration(seconds)}.", True)
            self.finished.emit(outcome.job, seconds)
        else:
            message = outcome.message or "The upload ended without an answer."
            # A full bar next to a refusal reads as success: start it over.
            self._area.show_outcome("Not processed. The reason is below.", False)
            self._panel.show_error(f"{outcome.path.name} — not processed", message)
            self.failed.emit(message)

    def _several_files_ended(self, queue: UploadQueue) -> None:
        done = [outcome.job for outcome in queue.outcomes if outcome.job is not None]
        not_processed = [(outcome.path.name, outcome.message) for outcome in queue.outcomes
                         if outcome.job is None]
        seconds = self._area.elapsed()
        total = sum(job.bytes_received for job in done)
        self._area.show_outcome(
            f"Done: {format_count(len(done), 'file')} of {len(queue.paths)}, "
            f"{format_bytes(total)} in {format_duration(seconds)}.", bool(done))
        if not done:
            self._panel.show_error("No file was processed", "<br>".join(
                f"{name}: {message}" for name, message in not_processed))
            self.failed.emit(not_processed[0][1])
            return
        self.several_done.emit(done, not_processed, seconds)
