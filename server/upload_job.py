"""One upload as a job: its limits, its aggregation, its files and its record, without gRPC."""

from __future__ import annotations

import errno
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Callable

from server.aggregation import Aggregator, LimitExceeded, size_text
from server.departments import Departments
from server.job_store import LEASE_LOST_MESSAGE, JobRecord, JobState, LeaseLost, StoreError
from server.output_files import create, publish_rejected, remove_quietly, write_totals

if TYPE_CHECKING:
    from server.jobs import JobManager

log = logging.getLogger(__name__)

# Control characters, and the invisible ones that reorder or break text (bidirectional
# overrides such as U+202E, line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
# File names as most file systems allow them: a reply listing the history stays small.
MAX_FILENAME_CHARACTERS = 255
# Every sentence the server sends about a job is kept to this (they are far shorter; a file's
# own text, like its header's cells, is cut before it gets here).
MAX_MESSAGE_CHARACTERS = 1000


class Abandoned(Exception):
    """The call ended before its job could be recorded as completed."""


class OutputError(Exception):
    """The job's files cannot be written; the message is a plain sentence."""


def cannot_write_message(error: OSError) -> str:
    """A sentence for a file the server could not write."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif error.errno == errno.EFBIG:
        reason = "the file grew past the largest size allowed"
    return f"The totals file could not be written ({reason}). Nothing was kept."


def bounded(message: str) -> str:
    """A sentence as clients get it, in a status (whose details must stay well within gRPC's
    8 KiB of metadata) and in the history (whose replies must stay within 4 MB)."""
    return message if len(message) <= MAX_MESSAGE_CHARACTERS else \
        message[:MAX_MESSAGE_CHARACTERS - 1] + "\u2026"


def shown_filename(filename: str) -> str:
    """A client's file name as the history keeps it: control characters (line breaks, escapes)
    as `?`, and at most MAX_FILENAME_CHARACTERS, cut in the middle so that the start and the
    extension stay readable; no reply grows with what a client sends."""
    filename = _CONTROL.sub("?", filename)
    if len(filename) <= MAX_FILENAME_CHARACTERS:
        return filename
    keep_end = 40
    return f"{filename[:MAX_FILENAME_CHARACTERS - keep_end - 1]}\u2026{filename[-keep_end:]}"


class UploadJob:
    """One upload in progress: feed it chunks, then complete, fail or cancel it once."""

    def __init__(self, manager: "JobManager", record: JobRecord) -> None:
        self._manager = manager
        self.record = record
        self.output_path = manager.output_dir / f"{record.job_id}.csv"
        self.rejected_path = manager.output_dir / f"{record.job_id}.rejected.csv"
        self._raw_rejected_path = manager.output_dir / f".{record.job_id}.rejected.raw.tmp"
        self.bytes_received = 0
        self._ended = False
        self._lost = False
        self._raw_rejected = None
        self._aggregator = None
        try:
            self._raw_rejected = create(self._raw_rejected_path, manager.file_mode)
        except OSError as exc:
            message = cannot_write_message(exc)
            self.fail(message)
            raise OutputError(message) from exc
        self._aggregator = Aggregator(max_departments=manager.limits.max_departments,
                                      max_field_bytes=manager.limits.max_field_bytes,
                                      rejected_out=self._raw_rejected)

    @property
    def job_id(self) -> str:
        return self.record.job_id

    def set_filename(self, filename: str) -> None:
        """Keeps the user's file name (display only, see shown_filename) the first time a chunk
        carries one."""
        if filename and not self.record.filename:
            filename = shown_filename(filename)
            self.record = replace(self.record, filename=filename)
            self._manager.store.set_filename(self.job_id, filename)

    def lose(self) -> None:
        """Another server has marked this job FAILED (this server's lease had expired): the
        next chunk is refused."""
        self._lost = True

    def count_bytes(self, size: int) -> None:
        """Counts bytes as they arrive, before they are fed; raises LimitExceeded past the size
        limit, LeaseLost once the job is lost (see lose)."""
        if self._lost:
            raise LeaseLost(LEASE_LOST_MESSAGE)
        self.bytes_received += size
        limit = self._manager.limits.max_upload_bytes
        if self.bytes_received > limit:
            raise LimitExceeded(f"The file is larger than {size_text(limit)}, the largest "
                                "accepted.")

    def feed(self, data: bytes) -> None:
        """Aggregates the next bytes of the file, counted before; whole blocks of rows are
        aggregated right away, so a call may take a while (a few milliseconds per MiB).
        Raises InputError or LimitExceeded as soon as they are known."""
        self._aggregator.feed(data)

    @property
    def ended(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self._ended

    def snapshot(self) -> JobRecord:
        """The job as it stands while running."""
        if self._aggregator is None:
            return replace(self.record, bytes_received=self.bytes_received)
        return replace(self.record, bytes_received=self.bytes_received,
                       rows_processed=self._aggregator.rows_processed,
                       rows_rejected=self._aggregator.rows_rejected,
                       department_count=self._aggregator.department_count)

    def complete(self, is_abandoned: Callable[[], bool],
                 on_totals: Callable[[Departments], None] | None = None) -> JobRecord:
        """Finishes aggregation and publishes the files; raises InputError or LimitExceeded.

        on_totals(totals), when given, is called as soon as the totals are known, before the
        files are written, so that a caller can start its own work on them meanwhile.
        If is_abandoned() is true once the files are written (the call has ended: a client that
        cancelled, a server that stopped), raises Abandoned and records nothing: end the job
        with cancel() or fail(), which remove the files.
        """
        result = self._aggregator.finish()
        if on_totals is not None:
            on_totals(result.totals)
        self._raw_rejected.close()
        # The history's compressed copy of the totals (a few hundred ms for a million
        # departments) is made on the other core while the files are written.
        with ThreadPoolExecutor(max_workers=1) as packer:
            packing = packer.submit(result.totals.pack)
            write_totals(self.output_path, result.totals, self._manager.file_mode)
            rejected_path = ""
            if result.rows_rejected:
                publish_rejected(self._raw_rejected_path, self.rejected_path, result.encoding)
                rejected_path = str(self.rejected_path)
            else:
                remove_quietly(self._raw_rejected_path)
            packing.result()
        if is_abandoned():
            raise Abandoned
        return self._end(replace(
            self.record,
            state=JobState.COMPLETED,
            output_path=str(self.output_path),
            rejected_path=rejected_path,
            rows_processed=result.rows_processed,
            rows_rejected=result.rows_rejected,
            department_count=len(result.totals),
            encoding=result.encoding,
            delimiter=result.delimiter,
            departments=result.totals,
            rejected_samples=[(s.line, s.reason) for s in result.rejected_samples],
        ))

    def fail(self, message: str) -> JobRecord:
        """Ends the job FAILED with a plain message; leaves no files."""
        return self._end_without_result(JobState.FAILED, message)

    def cancel(self, message: str = "The upload was cancelled (or its connection lost) before "
                                     "the whole file arrived, so nothing was kept.") -> JobRecord:
        """Ends the job CANCELLED; leaves no files."""
        return self._end_without_result(JobState.CANCELLED, message)

    def _end_without_result(self, state: JobState, message: str) -> JobRecord:
        # The record says what the client was told: no totals, so no counts of them; how many
        # bytes arrived before the end.
        message = bounded(message)
        self._remove_files()
        return self._end(replace(self.record, state=state, error=message, rows_processed=0,
                                 rows_rejected=0, department_count=0))

    def _remove_files(self) -> None:
        if self._raw_rejected is not None:
            self._raw_rejected.close()
        self._manager.remove_job_files(self.job_id)

    def _end(self, record: JobRecord) -> JobRecord:
        if self._ended:
            raise RuntimeError(f"job {self.job_id} ended twice")
        self._ended = True
        record = replace(record, bytes_received=self.bytes_received, finished_at=time.time())
        self.record = record
        try:
            self._manager.store.save(record, self._manager.server_id)
        except LeaseLost:
            # Another server took this server for gone and marked the job FAILED: so it stays.
            if record.state == JobState.COMPLETED:
                self._remove_files()
                self.record = replace(record, state=JobState.FAILED, error=LEASE_LOST_MESSAGE)
                raise
        except StoreError:  # the history is gone: no file may outlive its record
            if record.state == JobState.COMPLETED:
                self._remove_files()
            raise
        finally:
            self._manager.forget(self)
        return record
