"""The uploads a server runs and the jobs it keeps: slots, history questions, deletion."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

from server.aggregation import LimitExceeded
from server.departments import Departments
from server.job_store import INTERRUPTED_MESSAGE, JobRecord, JobState, JobStore, StoreError
from server.leases import LeaseKeeper
from server.limits import DEFAULT_LEASE_SECONDS, Limits
from server.output_files import remove_quietly, temporary_path
from server.upload_job import UploadJob

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[0-9a-fA-F]{32}")
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 1000


class JobRunning(Exception):
    """The job is still running, so it has no result yet (and cannot be deleted)."""


class NoResult(Exception):
    """The job ended without a result (FAILED or CANCELLED); the message names its state."""


def is_job_id(text: str) -> bool:
    """True for a string shaped like a job id (uuid4 hex, in either case: ids are kept in
    lower case)."""
    return _JOB_ID.fullmatch(text) is not None


class JobManager:
    """Starts uploads within the limits and answers questions about jobs."""

    def __init__(self, store: JobStore, output_dir: Path, limits: Limits,
                 lease_seconds: float = DEFAULT_LEASE_SECONDS) -> None:
        self.store = store
        self.file_mode = store.file_mode  # output files are as private as the history
        self.output_dir = output_dir
        self.limits = limits
        self.server_id = uuid.uuid4().hex
        self._running: dict[str, UploadJob] = {}
        # The jobs that count against the upload limit: a job gives its slot back as soon as
        # its call is gone (free_slot), while its thread may still be finishing a block.
        self._slots: set[str] = set()
        self._paged: tuple[str, Departments] | None = None  # see completed_departments
        # Re-entrant: a job that fails while being started reports its end under this lock.
        self._mutex = threading.RLock()
        self._idle = threading.Condition(self._mutex)
        output_dir.mkdir(mode=store.folder_mode, parents=True, exist_ok=True)
        self._lease = None
        # Called (on the lease's thread) each time the lease is renewed (the history answers),
        # and each time a renewal fails (it does not).
        self.on_lease_renewed: Callable[[], None] | None = None
        self.on_lease_failed: Callable[[StoreError], None] | None = None
        if store.shared:
            # Other servers may be running jobs: only those of servers gone quiet are ours to end.
            self._lease = LeaseKeeper(store, self.server_id, lease_seconds, self._progress,
                                      self._remove_abandoned, self._renewed, self._lease_lost,
                                      self._renewal_failed)
            self._lease.start(dataclasses.asdict(limits))
            self._lease.tick()
        else:
            # The storage lock keeps any other server out: every job left running was cut off.
            abandoned = store.fail_abandoned(0, time.time(), INTERRUPTED_MESSAGE)
            for job_id in abandoned:
                log.warning("job %s was interrupted by a restart; marked FAILED", job_id)
            self._remove_abandoned(abandoned)
        # Temporary files of jobs that have ended are leftovers (a running job's are not,
        # whichever server runs it).
        for path in output_dir.glob(".*.tmp"):
            job_id = path.name[1:33]
            if is_job_id(job_id):
                record = store.get(job_id)
                if record is not None and record.state != JobState.RUNNING:
                    remove_quietly(path)

    def close(self) -> None:
        """Ends the lease (once no upload runs) and closes the history."""
        if self._lease is not None:
            self._lease.stop()
        self.store.close()

    def _progress(self) -> list[tuple[str, int, int, int]]:
        with self._mutex:
            running = list(self._running.values())
        return [(record.job_id, record.bytes_received, record.rows_processed,
                 record.rows_rejected) for record in (job.snapshot() for job in running)]

    def _lease_lost(self) -> None:
        """Stops the uploads that another server marked FAILED while this one was out of
        touch: their next chunk is refused (LeaseLost)."""
        with self._mutex:
            running = list(self._running.values())
        for job in running:
            record = self.store.get(job.job_id)
            if record is None or record.state != JobState.RUNNING:
                job.lose()

    def _renewal_failed(self, error: StoreError) -> None:
        if self.on_lease_failed is not None:
            self.on_lease_failed(error)

    def _renewed(self) -> None:
        if self.on_lease_renewed is not None:
            self.on_lease_renewed()

    def _remove_abandoned(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            self.remove_job_files(job_id)

    def start_upload(self) -> UploadJob:
        """Starts a job; raises LimitExceeded when the server is at its upload limit, and
        OutputError (the job recorded FAILED) when its files cannot be opened."""
        with self._mutex:
            if len(self._slots) >= self.limits.max_concurrent_uploads:
                most = self.limits.max_concurrent_uploads
                log.info("an upload was refused: %d already running, the most at once", most)
                raise LimitExceeded(
                    f"{most} file{'s are' if most != 1 else ' is'} already being processed, the "
                    "most this server takes at once. Try again in a moment.")
            record = JobRecord(job_id=uuid.uuid4().hex, state=JobState.RUNNING,
                               created_at=time.time())
            self.store.add(record, self.server_id)
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
        record = self.store.get(job_id)
        if record is not None and record.state == JobState.RUNNING:  # on another server
            raise JobRunning(job_id)
        return record

    def completed_departments(self, job_id: str) -> Departments | None:
        """A completed job's departments in output order; None if there is no such job;
        JobRunning while it runs, NoResult if it ended without a result. The last job
        asked for is kept, so that paging through it reads the history once."""
        with self._mutex:  # (a job kept here has ended: ids are never reused)
            paged = self._paged if self._paged is not None and self._paged[0] == job_id else None
        # (Another server may have deleted it meanwhile.)
        if paged is not None and (not self.store.shared or self.store.has(job_id)):
            return paged[1]
        record = self.ended(job_id)
        if record is None:
            return None
        if record.state != JobState.COMPLETED:
            raise NoResult(record.state.name)
        with self._mutex:
            self._paged = (job_id, record.departments)
        return record.departments

    def delete(self, job_id: str) -> JobRecord | None:
        """Removes a job's files and history entry; returns the job as it was, or None if there
        is no such job. JobRunning while it runs."""
        with self._mutex:
            record = self.ended(job_id)  # JobRunning while it runs, here or on another server
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
