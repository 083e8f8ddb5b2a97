"""Streams one file through the real stub off the GUI thread, reporting as signals."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import grpc
from PySide6.QtCore import QObject, Signal, Slot

from salesapi import sales_pb2_grpc
from salesapi.client import DEFAULT_CHUNK_SIZE, describe_rpc_error, file_chunks

# Progress is reported at most this often, so a fast upload does not flood the event loop.
_PROGRESS_INTERVAL = 0.05


class UploadWorker(QObject):
    """Lives on a QThread; run() blocks there until the upload ends one way or another.

    Signals are emitted from the worker thread and from gRPC's own thread (progress), never
    touching widgets; Qt queues them to the window.
    """

    job_started = Signal(str)  # job id, from the server's initial metadata
    progressed = Signal(int, int)  # bytes handed to gRPC, file size
    finished = Signal(object)  # sales_pb2.Job
    failed = Signal(str)  # a sentence for the user
    cancelled = Signal()
    ended = Signal()  # after any of finished, failed, cancelled

    def __init__(self, stub: sales_pb2_grpc.SalesServiceStub, path: Path, address: str,
                 chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        super().__init__()
        self._stub = stub
        self._path = path
        self._address = address
        self._chunk_size = chunk_size
        self._lock = threading.Lock()
        self._call: grpc.Future | None = None
        self._cancel_requested = False
        self._read_error: OSError | None = None
        self._size = 0
        self._last_report = 0.0

    def cancel(self) -> None:
        """Cancels the RPC itself (never just the generator); safe from any thread."""
        with self._lock:
            self._cancel_requested = True
            call = self._call
        if call is not None:
            call.cancel()

    @Slot()
    def run(self) -> None:
        """Uploads the file; emits exactly one of finished, failed, cancelled, then ended."""
        try:
            self._run()
        finally:
            self.ended.emit()

    def _run(self) -> None:
        try:
            self._size = os.path.getsize(self._path)
            with open(self._path, "rb"):
                pass
        except OSError as exc:
            self.failed.emit(f"Cannot read {self._path.name}: {exc.strerror or exc}.")
            return
        call = self._stub.UploadCSV.future(self._chunks())
        # Waited for on an event of our own: a thread waiting in call.result() is woken by gRPC
        # at every message sent, and those wake-ups slow the upload (measured: about 15 %).
        done = threading.Event()
        call.add_done_callback(lambda _call: done.set())
        with self._lock:
            self._call = call
            cancel_now = self._cancel_requested
        if cancel_now:
            call.cancel()
        try:
            job_id = dict(call.initial_metadata() or ()).get("job-id")
            if job_id:
                self.job_started.emit(job_id)
            done.wait()
            job = call.result()
        except grpc.FutureCancelledError:
            self.cancelled.emit()
        except grpc.RpcError as error:
            if self._read_error is not None:
                self.failed.emit(f"Reading {self._path.name} failed part way: "
                                 f"{self._read_error.strerror or self._read_error}.")
            elif self._cancel_requested:
                self.cancelled.emit()
            else:
                self.failed.emit(describe_rpc_error(error, self._address))
        else:
            self.progressed.emit(self._size, self._size)
            self.finished.emit(job)

    def _chunks(self):
        # Consumed by gRPC on its own thread. A read error ends the stream with an exception,
        # which makes gRPC cancel the call: a truncated file must never look complete.
        try:
            yield from file_chunks(self._path, self._chunk_size, self._on_sent)
        except OSError as exc:
            self._read_error = exc
            raise

    def _on_sent(self, sent: int) -> None:
        now = time.monotonic()
        if sent >= self._size or now - self._last_report >= _PROGRESS_INTERVAL:
            self._last_report = now
            self.progressed.emit(sent, self._size)
