"""Several files uploaded one after another, each as its own job, with one count of bytes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from PySide6.QtCore import QObject, Signal

from desktop_app.event_loop import WindowLoop
from desktop_app.upload_worker import UploadWorker
from salesapi import sales_pb2


@dataclass
class Outcome:
    """How one file's upload ended: a job (finished), a sentence (failed), or neither
    (cancelled)."""

    path: Path
    job: sales_pb2.Job | None = None
    message: str = ""


class UploadQueue(QObject):
    """Uploads files in turn through UploadWorker. Progress counts the bytes of every file, so
    one bar covers them all. Cancelling cancels the file being sent and the rest."""

    job_started = Signal(str)  # job id of the file being sent
    progressed = Signal(int, int)  # bytes sent of all files, all files' bytes
    ended = Signal()  # outcomes holds one Outcome per file started; cancelled says if so

    def __init__(self, loop: WindowLoop, address: str, paths: list[Path], sizes: list[int],
                 chunk_size: int, token: str | None,
                 credentials: grpc.ChannelCredentials | None, parent=None) -> None:
        super().__init__(parent)
        self._start_worker = lambda path: UploadWorker(loop, address, path, chunk_size, token,
                                                       credentials)
        self.paths = paths
        self._sizes = sizes
        self._total = sum(sizes)
        self.outcomes: list[Outcome] = []
        self.cancelled = False
        self._worker: UploadWorker | None = None
        self._sent_before = 0

    def start(self) -> None:
        self._next()

    def cancel(self) -> None:
        self.cancelled = True
        if self._worker is not None:
            self._worker.cancel()

    def wait(self, timeout: float) -> bool:
        """Waits for the file being sent to end (after cancel(), a moment)."""
        return self._worker is None or self._worker.wait(timeout)

    def _next(self) -> None:
        position = len(self.outcomes)
        if self.cancelled or position == len(self.paths):
            self._worker = None
            self.ended.emit()
            return
        self.outcomes.append(Outcome(self.paths[position]))
        self._sent_before = sum(self._sizes[:position])
        worker = self._start_worker(self.paths[position])
        # Bound methods of this object: Qt queues the worker's signals to the GUI thread.
        worker.job_started.connect(self.job_started)
        worker.progressed.connect(self._progressed)
        worker.finished.connect(self._finished)
        worker.failed.connect(self._failed)
        worker.cancelled.connect(self.cancel)
        worker.ended.connect(self._worker_ended)
        self._worker = worker
        worker.start()

    def _progressed(self, sent: int, _size: int) -> None:
        self.progressed.emit(self._sent_before + sent, self._total)

    def _finished(self, job: sales_pb2.Job) -> None:
        self.outcomes[-1].job = job

    def _failed(self, message: str) -> None:
        self.outcomes[-1].message = message

    def _worker_ended(self) -> None:
        if self._worker is not None:
            self._worker.deleteLater()
        self._next()
