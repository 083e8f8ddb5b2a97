"""Job history in an SQLite file under STORAGE_DIR: survives restarts, one server at a time."""

from __future__ import annotations

import enum
import fcntl
import logging
import json
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Iterator

from server.departments import Departments

log = logging.getLogger(__name__)

DATABASE_NAME = "jobs.sqlite3"
LOCK_NAME = "server.lock"
INTERRUPTED_MESSAGE = "The upload was interrupted by a server restart; please upload the file again."
_SCHEMA_VERSION = 2
# How department blobs are stored: Departments.pack() compresses them (version 1 did not).
_CODEC_NAME = "zstd"


class JobState(enum.IntEnum):
    """Mirrors sales.JobState; the numbers are the same."""

    RUNNING = 1
    COMPLETED = 2
    FAILED = 3
    CANCELLED = 4


@dataclass(frozen=True)
class JobRecord:
    """One job as the history keeps it."""

    job_id: str
    state: JobState
    created_at: float
    filename: str = ""
    output_path: str = ""
    rejected_path: str = ""
    finished_at: float | None = None
    rows_processed: int = 0
    rows_rejected: int = 0
    bytes_received: int = 0
    error: str = ""
    department_count: int = 0
    encoding: str = ""
    delimiter: str = ""
    departments: Departments = field(default_factory=Departments.empty)
    rejected_samples: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> "JobRecord":
        """The record without its departments and samples (what ListJobs shows)."""
        return replace(self, departments=Departments.empty(), rejected_samples=[])


class StoreError(Exception):
    """The job history cannot be opened; the message is a plain sentence."""


class HistoryUnavailable(StoreError):
    """The history failed while serving (damaged, removed, a disk error): no job can be
    recorded until an operator has looked; the message is a plain sentence."""


class StorageInUse(StoreError):
    """Another server holds the storage folder."""


# The record's plain fields are columns of the same names; departments and samples are stored
# apart (blobs and JSON).
_COLUMNS = tuple(f.name for f in fields(JobRecord)
                 if f.name not in ("departments", "rejected_samples"))
_SUMMARY_SELECT = ", ".join(_COLUMNS)
# What each column must hold (SQLite holds whatever it is given).
_KINDS = {f.name: {"float | None": (int, float), "float": (int, float), "int": int,
                   "str": str}.get(str(f.type), object)
          for f in fields(JobRecord) if f.name in _COLUMNS and f.name != "state"}
DAMAGED_MESSAGE = ("This job's entry in the history is damaged, so its results cannot be shown "
                   "(its output file may still be in the output folder).")


class JobStore:
    """Reads and writes job records; safe to share between the server's threads."""

    def __init__(self, storage_dir: Path, private: bool = True) -> None:
        """Opens (or creates) the history; raises StoreError with a plain sentence if it cannot.
        A folder and files it creates are its user's only (0700, 0600) when private, else
        readable by the user's group too (0750, 0640)."""
        self.file_mode = 0o600 if private else 0o640
        self.folder_mode = 0o700 if private else 0o750
        self.path = storage_dir / DATABASE_NAME
        try:
            storage_dir.mkdir(mode=self.folder_mode, parents=True, exist_ok=True)
            self._lock_file = os.fdopen(os.open(storage_dir / LOCK_NAME,
                                                os.O_RDWR | os.O_CREAT, self.file_mode), "a+")
        except OSError as exc:
            raise StoreError(f"Cannot use the storage folder {storage_dir.resolve()}: "
                             f"{exc.strerror or exc}. Choose another with --storage-dir "
                             "(STORAGE_DIR), or give this server's user the right to write "
                             "there.") from None
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StorageInUse(f"Another server is already using the storage folder "
                             f"{storage_dir.resolve()}. "
                             "Stop it, or choose another folder with STORAGE_DIR.") from None
        self._mutex = threading.Lock()
        try:
            # Made with its mode before SQLite opens it (its journal files take the same).
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, self.file_mode))
            self._identity = _identity(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._create_schema()
            problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(problem)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._lock_file.close()
            problem = " ".join(str(exc).split())  # SQLite's report may run over lines
            raise StoreError(f"The job history {self.path} is damaged or unreadable ({problem}). "
                             "It was left as it is: move it away (or restore a backup) to "
                             "start with an empty history.") from None

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The database under the mutex, the file checked first; a database error becomes
        HistoryUnavailable."""
        with self._mutex:
            db = self._checked()
            try:
                yield db
            except sqlite3.DatabaseError as exc:
                raise HistoryUnavailable(
                    f"The job history {self.path} failed ({exc}), so jobs can no longer be "
                    "recorded. Check the disk and the file, then restart the server.") from None

    def _checked(self) -> sqlite3.Connection:
        """The database, once the file is known to be the one opened (call under _mutex)."""
        if _identity(self.path) != self._identity:
            raise HistoryUnavailable(
                f"The job history {self.path} was removed or replaced while the server was "
                "running, so jobs can no longer be recorded. Restore it, then restart the "
                "server.")
        return self._db

    def _create_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == _SCHEMA_VERSION:
            return
        if version == 1:  # blobs written before compression stay as they are
            self._db.executescript(f"""
                BEGIN;
                ALTER TABLE jobs ADD COLUMN department_codec TEXT NOT NULL DEFAULT '';
                PRAGMA user_version = {_SCHEMA_VERSION};
                COMMIT;
            """)
            return
        if version != 0:
            raise sqlite3.DatabaseError(f"unknown schema version {version}")
        self._db.executescript(f"""
            BEGIN;
            CREATE TABLE jobs (
                job_id TEXT PRIMARY KEY,
                state INTEGER NOT NULL,
                created_at REAL NOT NULL,
                filename TEXT NOT NULL DEFAULT '',
                output_path TEXT NOT NULL DEFAULT '',
                rejected_path TEXT NOT NULL DEFAULT '',
                finished_at REAL,
                rows_processed INTEGER NOT NULL DEFAULT 0,
                rows_rejected INTEGER NOT NULL DEFAULT 0,
                bytes_received INTEGER NOT NULL DEFAULT 0,
                error TEXT NOT NULL DEFAULT '',
                department_count INTEGER NOT NULL DEFAULT 0,
                encoding TEXT NOT NULL DEFAULT '',
                delimiter TEXT NOT NULL DEFAULT '',
                department_names BLOB NOT NULL DEFAULT x'',
                department_totals BLOB NOT NULL DEFAULT x'',
                department_codec TEXT NOT NULL DEFAULT '',
                rejected_samples TEXT NOT NULL DEFAULT '[]'
            );
            CREATE INDEX jobs_by_time ON jobs (created_at);
            PRAGMA user_version = {_SCHEMA_VERSION};
            COMMIT;
        """)

    def close(self) -> None:
        """Closes the database and lets another server use the folder."""
        with self._mutex:
            self._db.close()
            self._lock_file.close()

    def mark_interrupted(self, finished_at: float) -> list[JobRecord]:
        """Turns jobs left RUNNING by a crash into FAILED ones; returns them as they were."""
        try:
            with self._mutex:
                rows = self._db.execute(
                    f"SELECT {_SUMMARY_SELECT} FROM jobs WHERE state = ?", (JobState.RUNNING,)
                ).fetchall()
                self._db.execute(
                    "UPDATE jobs SET state = ?, error = ?, finished_at = ?, output_path = '', "
                    "rejected_path = '' WHERE state = ?",
                    (JobState.FAILED, INTERRUPTED_MESSAGE, finished_at, JobState.RUNNING))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"The job history {self.path} cannot be updated ({exc}). Is another "
                             "program using it?") from None
        return [_record(row) for row in rows]

    def add(self, record: JobRecord) -> None:
        """Records a new job."""
        with self._using() as db:
            db.execute(
                "INSERT INTO jobs (job_id, state, created_at, filename) VALUES (?, ?, ?, ?)",
                (record.job_id, record.state, record.created_at, record.filename))

    def set_filename(self, job_id: str, filename: str) -> None:
        """Records the user's file name once the first chunk names it."""
        with self._using() as db:
            db.execute("UPDATE jobs SET filename = ? WHERE job_id = ?", (filename, job_id))

    def save(self, record: JobRecord) -> None:
        """Stores the final state of a job."""
        values = [getattr(record, name) for name in _COLUMNS]
        names, totals = record.departments.pack()
        with self._using() as db:
            db.execute(
                f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in _COLUMNS[1:])}, "
                "department_names = ?, department_totals = ?, department_codec = ?, "
                "rejected_samples = ? WHERE job_id = ?",
                (*values[1:], names, totals, _CODEC_NAME,
                 json.dumps(record.rejected_samples, ensure_ascii=False), record.job_id))

    def has(self, job_id: str) -> bool:
        """True if the history knows job_id."""
        with self._using() as db:
            return db.execute("SELECT 1 FROM jobs WHERE job_id = ?",
                              (job_id,)).fetchone() is not None

    def get(self, job_id: str) -> JobRecord | None:
        """One job with its departments and samples, or None."""
        with self._using() as db:
            row = db.execute(
                f"SELECT {_SUMMARY_SELECT}, department_names, department_totals, "
                "department_codec, rejected_samples FROM jobs WHERE job_id = ?",
                (job_id,)).fetchone()
        if row is None:
            return None
        *summary, names, totals, codec, samples = row
        record = _record(summary)
        if record.error == DAMAGED_MESSAGE:
            return record
        try:
            if codec not in ("", _CODEC_NAME):
                raise ValueError(f"unknown codec {codec!r}")
            departments = Departments.unpack(names, totals, compressed=codec == _CODEC_NAME)
            if len(departments) != record.department_count:
                raise ValueError("departments and department_count differ")
            rejected = [(int(line), str(reason)) for line, reason in json.loads(samples)]
        except (ValueError, TypeError, OverflowError) as exc:
            return _damaged(record.job_id, exc)
        return replace(record, departments=departments, rejected_samples=rejected)

    def delete(self, job_id: str) -> None:
        """Forgets a job."""
        with self._using() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def finished_before(self, cutoff: float) -> list[str]:
        """The ids of jobs that ended before cutoff (seconds since the epoch)."""
        with self._using() as db:
            rows = db.execute("SELECT job_id FROM jobs WHERE state != ? AND finished_at < ?",
                              (JobState.RUNNING, cutoff)).fetchall()
        return [job_id for (job_id,) in rows]

    def list(self, limit: int) -> list[JobRecord]:
        """The newest jobs first, without departments and samples."""
        with self._using() as db:
            rows = db.execute(
                f"SELECT {_SUMMARY_SELECT} FROM jobs ORDER BY created_at DESC, rowid DESC "
                "LIMIT ?", (limit,)).fetchall()
        return [_record(row) for row in rows]


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file path is (device, inode), or None if there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _record(row: tuple | list) -> JobRecord:
    """A row's record; a damaged one (a value of the wrong kind) as FAILED with DAMAGED_MESSAGE."""
    values = dict(zip(_COLUMNS, row))
    try:
        values["state"] = JobState(values["state"])
        for name, kind in _KINDS.items():
            if not isinstance(values[name], kind) and not (name == "finished_at"
                                                          and values[name] is None):
                raise TypeError(f"{name} is {values[name]!r}")
    except (ValueError, TypeError) as exc:
        return _damaged(values["job_id"], exc)
    return JobRecord(**values)


def _damaged(job_id, problem: Exception) -> JobRecord:
    log.error("the history's entry for job %s is damaged: %s", job_id, problem)
    return JobRecord(job_id=str(job_id), state=JobState.FAILED, created_at=0.0,
                     error=DAMAGED_MESSAGE)
