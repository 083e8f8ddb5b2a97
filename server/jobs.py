"""Runs uploads as jobs: limits, aggregation, output files and the history, without gRPC."""

from __future__ import annotations

import errno
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Callable

from server.aggregation import Aggregator, LimitExceeded, size_text
from server.departments import Departments
from server.job_store import JobRecord, JobState, JobStore, StoreError, remove_quietly
from server.limits import Limits
from server.output_files import create, publish_rejected, temporary_path, write_totals

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[0-9a-f]{32}")
# Control characters, and the invisible ones that reorder or break text (bidirectional
# overrides such as U+202E, line and paragraph separators).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
# File names as most file systems allow them: a reply listing the history stays small.
MAX_FILENAME_CHARACTERS = 255
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000


class Abandoned(Exception):
    """The call ended before its job could be recorded as completed."""


class OutputError(Exception):
    """The job's files cannot be written; the message is a plain sentence."""


class JobRunning(Exception):
    """The job is still running, so it has no result yet (and cannot be deleted)."""


def cannot_write_message(error: OSError) -> str:
    """A sentence for a file the server could not write."""
    reason = error.strerror or str(error)
    if error.errno == errno.ENOSPC:
        reason = "the disk is full"
    elif error.errno == errno.EFBIG:
        reason = "the file grew past the size this server may write"
    return f"The server could not write the output file ({reason}). Nothing was kept."


def shown_filename(filename: str) -> str:
    """A client's file name as the history keeps it: control characters (line breaks, escapes)
    as `?`, and at most MAX_FILENAME_CHARACTERS, cut in the middle so that the start and the
    extension stay readable; no reply grows with what a client sends."""
    filename = _CONTROL.sub("?", filename)
    if len(filename) <= MAX_FILENAME_CHARACTERS:
        return filename
    keep_end = 40
    return f"{filename[:MAX_FILENAME_CHARACTERS - keep_end - 1]}\u2026{filename[-keep_end:]}"


def is_job_id(text: str) -> bool:
    """True for a string shaped like a job id (uuid4 hex)."""
    return _JOB_ID.fullmatch(text) is not None


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

    def count_bytes(self, size: int) -> None:
        """Counts bytes as they arrive, before they are fed; raises LimitExceeded past the size
        limit."""
        self.bytes_received += size
        limit = self._manager.limits.max_upload_bytes
        if self.bytes_received > limit:
            raise LimitExceeded(f"The file is larger than {size_text(limit)}, the largest this "
                                "server accepts.")

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

    def cancel(self, message: str = "The upload ended before the end of the file: the client "
                                     "cancelled it or its connection was lost.") -> JobRecord:
        """Ends the job CANCELLED; leaves no files."""
        return self._end_without_result(JobState.CANCELLED, message)

    def _end_without_result(self, state: JobState, message: str) -> JobRecord:
        # The record says what the client was told: no totals, so no counts of them; how many
        # bytes arrived before the end.
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
            self._manager.store.save(record)
        except StoreError:  # the history is gone: no file may outlive its record
            if record.state == JobState.COMPLETED:
                self._remove_files()
            raise
        finally:
            self._manager.forget(self)
        return record


class JobManager:
    """Starts uploads within the limits and answers questions about jobs."""

    def __init__(self, store: JobStore, output_dir: Path, limits: Limits) -> None:
        self.store = store
        self.file_mode = store.file_mode  # output files are as private as the history
        self.output_dir = output_dir
        self.limits = limits
        self._running: dict[str, UploadJob] = {}
        # The jobs that count against the upload limit: a job gives its slot back as soon as
        # its call is gone (free_slot), while its thread may still be finishing a block.
        self._slots: set[str] = set()
        self._paged: tuple[str, Departments] | None = None  # see completed_departments
        # Re-entrant: a job that fails while being started reports its end under this lock.
        self._mutex = threading.RLock()
        self._idle = threading.Condition(self._mutex)
        output_dir.mkdir(mode=store.folder_mode, parents=True, exist_ok=True)
        for record in store.mark_interrupted(time.time()):
            log.warning("job %s was interrupted by a restart; marked FAILED", record.job_id)
            self.remove_job_files(record.job_id)
        # Nothing runs yet, and the storage lock makes these jobs ours: any temporary file of
        # theirs is a leftover.
        for path in output_dir.glob(".*.tmp"):
            job_id = path.name[1:33]
            if is_job_id(job_id) and store.has(job_id):
                remove_quietly(path)

    def start_upload(self) -> UploadJob:
        """Starts a job; raises LimitExceeded when the server is at its upload limit, and
        OutputError (the job recorded FAILED) when its files cannot be opened."""
        with self._mutex:
            if len(self._slots) >= self.limits.max_concurrent_uploads:
                most = self.limits.max_concurrent_uploads
                raise LimitExceeded(
                    f"The server is already processing {most} upload{'s' if most != 1 else ''}, "
                    "the most it runs at once. Try again in a moment.")
            record = JobRecord(job_id=uuid.uuid4().hex, state=JobState.RUNNING,
                               created_at=time.time())
            self.store.add(record)
            job = UploadJob(self, record)  # OutputError: recorded FAILED, never running
            self._running[job.job_id] = job
            self._slots.add(job.job_id)
        return job

    def free_slot(self, job: UploadJob) -> None:
        """Lets another upload start in this job's place, before the job has ended (its call
        is gone; its thread may still be finishing a block)."""
        with self._mutex:
            self._slots.discard(job.job_id)

    def forget(self, job: UploadJob) -> None:
        """Called by a job that has ended."""
        with self._mutex:
            self._running.pop(job.job_id, None)
            self._slots.discard(job.job_id)
            self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no upload is running; False on timeout."""
        with self._mutex:
            return self._idle.wait_for(lambda: not self._running, timeout)

    def get(self, job_id: str) -> JobRecord | None:
        """A job with its departments, live figures while running; None if unknown."""
        with self._mutex:
            job = self._running.get(job_id)
        if job is not None:
            return job.snapshot()
        return self.store.get(job_id)

    def list(self, limit: int = 0) -> list[JobRecord]:
        """Newest jobs first, without departments and samples."""
        limit = DEFAULT_LIST_LIMIT if limit <= 0 else min(limit, MAX_LIST_LIMIT)
        records = self.store.list(limit)
        with self._mutex:
            running = dict(self._running)
        return [running[r.job_id].snapshot().summary() if r.job_id in running else r
                for r in records]

    def ended(self, job_id: str) -> JobRecord | None:
        """A job that has ended, as the history keeps it; None if there is no such job;
        JobRunning while it runs."""
        with self._mutex:
            if job_id in self._running:
                raise JobRunning(job_id)
        return self.store.get(job_id)

    def completed_departments(self, job_id: str) -> Departments | None:
        """A completed job's departments in output order (an empty list for a job that did
        not complete); None if there is no such job; JobRunning while it runs. The last job
        asked for is kept, so that paging through it reads the history once."""
        with self._mutex:
            if job_id in self._running:
                raise JobRunning(job_id)
            if self._paged is not None and self._paged[0] == job_id:
                return self._paged[1]
        record = self.store.get(job_id)
        if record is None:
            return None
        with self._mutex:
            self._paged = (job_id, record.departments)
        return record.departments

    def delete(self, job_id: str) -> JobRecord | None:
        """Removes a job's files and history entry; returns the job as it was, or None if there
        is no such job. JobRunning while it runs."""
        with self._mutex:
            if job_id in self._running:
                raise JobRunning(job_id)
            record = self.store.get(job_id)
            if record is None:
                return None
            if self._paged is not None and self._paged[0] == job_id:
                self._paged = None
            self.remove_job_files(job_id)
            self.store.delete(job_id)
        log.info("job %s deleted", job_id)
        return record

    def delete_finished_before(self, cutoff: float) -> int:
        """Deletes every job that ended before cutoff (seconds since the epoch), files and all;
        returns how many."""
        deleted = 0
        for job_id in self.store.finished_before(cutoff):
            try:
                if self.delete(job_id) is not None:
                    deleted += 1
            except JobRunning:
                pass
        return deleted

    def remove_job_files(self, job_id: str) -> None:
        """Removes every file a job may have written, whole or partial."""
        for name in (f"{job_id}.csv", f"{job_id}.rejected.csv"):
            final = self.output_dir / name
            remove_quietly(final, temporary_path(final))
        remove_quietly(self.output_dir / f".{job_id}.rejected.raw.tmp")
