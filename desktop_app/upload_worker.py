"""Streams one file through the real stub on the window's event loop, reporting as signals."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from pathlib import Path

import grpc
from PySide6.QtCore import QObject, Signal

from desktop_app.event_loop import WindowLoop
from salesapi import sales_pb2_grpc
from salesapi.client import (DEFAULT_CHUNK_SIZE, file_chunks, open_aio_channel, readable_size,
                             token_metadata)
from wording.rpc_errors import describe_rpc_error

# Progress is reported at most this often, so a fast upload does not flood the GUI thread.
_PROGRESS_INTERVAL = 0.05


class UploadWorker(QObject):
    """One upload, run as a coroutine on the window's event loop (no thread of its own).

    Its signals are emitted from the loop's thread and never touch widgets: Qt queues them to
    the window, which lives on the GUI thread.
    """

    job_started = Signal(str)  # job id, from the server's initial metadata
    progressed = Signal(int, int)  # bytes handed to gRPC, file size
    finished = Signal(object)  # sales_pb2.Job
    failed = Signal(str)  # a sentence for the user
    cancelled = Signal()
    ended = Signal()  # after any of finished, failed, cancelled

    def __init__(self, loop: WindowLoop, address: str, path: Path,
                 chunk_size: int = DEFAULT_CHUNK_SIZE, token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        super().__init__()
        self._loop = loop
        self._address = address
        self._path = path
        self._chunk_size = chunk_size
        self._metadata = token_metadata(token)
        self._credentials = credentials
        self._lock = threading.Lock()
        self._call: grpc.aio.StreamUnaryCall | None = None
        self._cancel_requested = False
        self._read_error: OSError | None = None
        self._size = 0
        self._last_report = 0.0
        self._running: concurrent.futures.Future | None = None

    def start(self) -> None:
        """Starts the upload; emits exactly one of finished, failed, cancelled, then ended."""
        self._running = self._loop.submit(self._run())

    def cancel(self) -> None:
        """Cancels the RPC itself (never just the request stream); safe from any thread."""
        with self._lock:
            self._cancel_requested = True
            call = self._call
        if call is not None:
            self._loop.loop.call_soon_threadsafe(call.cancel)

    def wait(self, timeout: float) -> bool:
        """Waits until the upload has ended (after cancel(), a moment); False on timeout."""
        if self._running is None:
            return True
        done, _ = concurrent.futures.wait([self._running], timeout)
        return bool(done)

    async def _run(self) -> None:
        try:
            await self._upload()
        finally:
            self.ended.emit()

    async def _upload(self) -> None:
        try:
            self._size = readable_size(self._path)
        except OSError as exc:
            self.failed.emit(f"Cannot read {self._path.name}: {exc.strerror or exc}.")
            return
        async with open_aio_channel(self._address, self._credentials) as channel:
            call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV(metadata=self._metadata)
            with self._lock:
                self._call = call
                cancel_now = self._cancel_requested
            if cancel_now:
                call.cancel()
            announcing = asyncio.ensure_future(self._announce(call))
            await self._send(call)
            try:
                job = await call
            except asyncio.CancelledError:
                if not call.cancelled():
                    raise
                self._report_stop(None)
            except grpc.RpcError as error:
                self._report_stop(error)
            else:
                await announcing
                self.progressed.emit(self._size, self._size)
                self.finished.emit(job)
            finally:
                announcing.cancel()

    async def _announce(self, call: grpc.aio.StreamUnaryCall) -> None:
        try:
            job_id = dict(await call.initial_metadata() or ()).get("job-id")
        except (asyncio.CancelledError, grpc.RpcError):
            return
        if job_id:
            self.job_started.emit(job_id)

    async def _send(self, call: grpc.aio.StreamUnaryCall) -> None:
        """Writes the file as chunks. A read error cancels the call: a truncated file must never
        look complete. If the call ends early, the writing stops; awaiting the call tells why."""
        try:
            for chunk in file_chunks(self._path, self._chunk_size, self._on_sent):
                await call.write(chunk)
            await call.done_writing()
        except OSError as exc:
            self._read_error = exc
            call.cancel()
        except (asyncio.InvalidStateError, grpc.RpcError):
            pass
        except asyncio.CancelledError:
            if not call.cancelled():
                raise

    def _report_stop(self, error: grpc.RpcError | None) -> None:
        """Reports a call that ended without a job: cancelled (error None) or refused."""
        if self._read_error is not None:
            self.failed.emit(f"Reading {self._path.name} failed part way: "
                             f"{self._read_error.strerror or self._read_error}.")
        elif error is None or self._cancel_requested:
            self.cancelled.emit()
        else:
            self.failed.emit(describe_rpc_error(error, self._address,
                                                 tls=self._credentials is not None))

    def _on_sent(self, sent: int) -> None:
        now = time.monotonic()
        if sent >= self._size or now - self._last_report >= _PROGRESS_INTERVAL:
            self._last_report = now
            self.progressed.emit(sent, self._size)
