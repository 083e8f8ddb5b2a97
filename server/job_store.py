"""The job history: what a job record holds and the one interface to where it is kept.

Two stores implement it with the same SQL: SQLite in STORAGE_DIR (server/sqlite_store.py, the
default: embedded, one server at a time) and PostgreSQL (server/postgres_store.py: shared by
several servers). open_store() picks one from a database URL.

Jobs that run belong to the server that started them. A server renews its lease in the
history every few seconds; a job whose server stopped renewing it (killed, machine gone) is
marked FAILED by whichever server looks next (fail_abandoned). The database's clock decides,
so that servers whose clocks differ agree.
"""

from __future__ import annotations

import abc
import enum
import json
import logging
import re
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Sequence

from server.departments import Departments

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# How department blobs are stored: Departments.pack() compresses them (version 1 did not).
CODEC_NAME = "zstd"
INTERRUPTED_MESSAGE = "The upload was interrupted by a server restart; please upload the file again."
ABANDONED_MESSAGE = ("The upload was interrupted: the server handling it stopped. Please upload "
                     "the file again.")
LEASE_LOST_MESSAGE = ("This server lost touch with the job history for longer than its lease, so "
                      "another server marked the upload as interrupted; please upload the file "
                      "again.")
DAMAGED_MESSAGE = ("This job's entry in the history is damaged, so its results cannot be shown "
                   "(its output file may still be in the output folder).")


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
    """The history failed while serving (damaged, removed, a disk error, the database gone):
    no job can be recorded meanwhile; the message is a plain sentence for clients, `detail`
    what the server's log says (where the history is, what went wrong)."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail or message


class StorageInUse(StoreError):
    """Another server holds the storage folder (SQLite only)."""


class LeaseLost(StoreError):
    """The job was marked FAILED by another server meanwhile (this server had not renewed its
    lease in time), so its end was not recorded."""


# The record's plain fields are columns of the same names; departments and samples are stored
# apart (blobs and JSON).
_COLUMNS = tuple(f.name for f in fields(JobRecord)
                 if f.name not in ("departments", "rejected_samples"))
_SUMMARY_SELECT = ", ".join(_COLUMNS)
# What each column must hold (SQLite holds whatever it is given).
_KINDS = {f.name: {"float | None": (int, float), "float": (int, float), "int": int,
                   "str": str}.get(str(f.type), object)
          for f in fields(JobRecord) if f.name in _COLUMNS and f.name != "state"}


class JobStore(abc.ABC):
    """Reads and writes job records; safe to share between the server's threads.

    Subclasses open the database, keep its schema and give cursors in transactions; the SQL
    here is written once, with `?` for parameters."""

    # Several servers may use the store at once (else the store makes sure they cannot).
    shared = False
    # Modes of the folders and files the server makes beside the history (output files).
    file_mode = 0o600
    folder_mode = 0o700
    # The database clock, in seconds since the epoch, as an SQL expression.
    NOW_SQL = ""
    # Signs page tokens, so that any server sharing the store accepts another one's.
    page_token_key = b""
    # The longest a call may wait for the database before it counts as out of reach.
    longest_wait_seconds = 0.0

    @abc.abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """A cursor whose statements commit together on leaving; a database error becomes
        HistoryUnavailable."""

    @abc.abstractmethod
    def close(self) -> None:
        """Closes the database (and lets another server use an SQLite history)."""

    def _rows(self, sql: str, parameters: Sequence = ()) -> list[tuple]:
        with self._transaction() as cursor:
            cursor.execute(sql, parameters)
            return cursor.fetchall()

    def _change(self, sql: str, parameters: Sequence = ()) -> int:
        with self._transaction() as cursor:
            cursor.execute(sql, parameters)
            return cursor.rowcount

    # Jobs.

    def add(self, record: JobRecord, server_id: str) -> None:
        """Records a new job, run by server_id."""
        self._change("INSERT INTO jobs (job_id, state, created_at, filename, server_id) "
                     "VALUES (?, ?, ?, ?, ?)",
                     (record.job_id, int(record.state), record.created_at, record.filename,
                      server_id))

    def set_filename(self, job_id: str, filename: str) -> None:
        """Records the user's file name once the first chunk names it."""
        self._change("UPDATE jobs SET filename = ? WHERE job_id = ?", (filename, job_id))

    def save(self, record: JobRecord, server_id: str) -> None:
        """Stores the end of a job server_id runs; raises LeaseLost if another server has
        marked it FAILED meanwhile."""
        values = [getattr(record, name) for name in _COLUMNS]
        values[1] = int(record.state)
        names, totals = record.departments.pack()
        changed = self._change(
            f"UPDATE jobs SET {', '.join(f'{name} = ?' for name in _COLUMNS[1:])}, "
            "department_names = ?, department_totals = ?, department_codec = ?, "
            "rejected_samples = ? WHERE job_id = ? AND state = ? AND server_id = ?",
            (*values[1:], names, totals, CODEC_NAME,
             json.dumps(record.rejected_samples, ensure_ascii=False), record.job_id,
             int(JobState.RUNNING), server_id))
        if changed == 0:
            raise LeaseLost(LEASE_LOST_MESSAGE)

    def has(self, job_id: str) -> bool:
        """True if the history knows job_id."""
        return bool(self._rows("SELECT 1 FROM jobs WHERE job_id = ?", (job_id,)))

    def get(self, job_id: str) -> JobRecord | None:
        """One job with its departments and samples, or None."""
        rows = self._rows(f"SELECT {_SUMMARY_SELECT}, department_names, department_totals, "
                          "department_codec, rejected_samples FROM jobs WHERE job_id = ?",
                          (job_id,))
        if not rows:
            return None
        *summary, names, totals, codec, samples = rows[0]
        record = _record(summary)
        if record.error == DAMAGED_MESSAGE:
            return record
        try:
            if codec not in ("", CODEC_NAME):
                raise ValueError(f"unknown codec {codec!r}")
            departments = Departments.unpack(bytes(names), bytes(totals),
                                             compressed=codec == CODEC_NAME)
            if len(departments) != record.department_count:
                raise ValueError("departments and department_count differ")
            rejected = [(int(line), str(reason)) for line, reason in json.loads(samples)]
        except (ValueError, TypeError, OverflowError) as exc:
            return _damaged(record.job_id, exc)
        return replace(record, departments=departments, rejected_samples=rejected)

    def delete(self, job_id: str) -> None:
        """Forgets a job."""
        self._change("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def finished_before(self, cutoff: float) -> list[str]:
        """The ids of jobs that ended before cutoff (seconds since the epoch)."""
        rows = self._rows("SELECT job_id FROM jobs WHERE state != ? AND finished_at < ?",
                          (int(JobState.RUNNING), cutoff))
        return [job_id for (job_id,) in rows]

    def list(self, limit: int) -> list[JobRecord]:
        """The newest jobs first, without departments and samples."""
        rows = self._rows(f"SELECT {_SUMMARY_SELECT} FROM jobs "
                          "ORDER BY created_at DESC, job_id DESC LIMIT ?", (limit,))
        return [_record(row) for row in rows]

    # Servers and their leases.

    def register(self, server_id: str, name: str, settings: str = "") -> list[tuple[str, str]]:
        """Records a server that is about to run jobs, its lease renewed now, with its
        settings (what its uploads are held to); returns the other servers' (name, settings)."""
        with self._transaction() as cursor:
            self._insert_server(cursor, server_id, name, settings)
            cursor.execute("SELECT name, settings FROM servers WHERE server_id != ?",
                           (server_id,))
            return [(str(other), str(theirs)) for other, theirs in cursor.fetchall()]

    def _insert_server(self, cursor, server_id: str, name: str, settings: str) -> None:
        cursor.execute(f"INSERT INTO servers (server_id, name, settings, renewed_at) "
                       f"VALUES (?, ?, ?, {self.NOW_SQL})", (server_id, name, settings))

    def renew(self, server_id: str, name: str, settings: str,
              progress: Sequence[tuple[str, int, int, int]] = ()) -> bool:
        """Renews server_id's lease and records how far its running jobs are: (job_id, bytes,
        rows, rejected rows). False if the lease had been taken for expired (its jobs failed
        by another server): the server is registered again, with its name and settings."""
        with self._transaction() as cursor:
            cursor.execute(f"UPDATE servers SET renewed_at = {self.NOW_SQL} WHERE server_id = ?",
                           (server_id,))
            kept = cursor.rowcount != 0
            if not kept:
                self._insert_server(cursor, server_id, name, settings)
            if progress:
                cursor.executemany(
                    "UPDATE jobs SET bytes_received = ?, rows_processed = ?, rows_rejected = ? "
                    "WHERE job_id = ? AND state = ? AND server_id = ?",
                    [(size, rows, rejected, job_id, int(JobState.RUNNING), server_id)
                     for job_id, size, rows, rejected in progress])
        return kept

    def unregister(self, server_id: str) -> None:
        """Forgets a server that stopped cleanly (its jobs have ended)."""
        self._change("DELETE FROM servers WHERE server_id = ?", (server_id,))

    def fail_abandoned(self, lease_seconds: float, finished_at: float,
                       message: str = ABANDONED_MESSAGE) -> list[str]:
        """Forgets the servers that have not renewed their lease for lease_seconds and marks
        FAILED the jobs that were left running without a live server; returns their ids (the
        caller removes their files). With a lease of 0 every other server counts as gone."""
        with self._transaction() as cursor:
            cursor.execute(f"DELETE FROM servers WHERE renewed_at < {self.NOW_SQL} - ?",
                           (lease_seconds,))
            cursor.execute(
                "UPDATE jobs SET state = ?, error = ?, finished_at = ?, output_path = '', "
                "rejected_path = '' WHERE state = ? AND server_id NOT IN "
                "(SELECT server_id FROM servers) RETURNING job_id",
                (int(JobState.FAILED), message, finished_at, int(JobState.RUNNING)))
            return [job_id for (job_id,) in cursor.fetchall()]


def open_store(database: str | None, storage_dir: Path, private: bool = True) -> JobStore:
    """The history a database URL names: `sqlite:///PATH` or `postgresql://...`; None (or "")
    is STORAGE_DIR's SQLite file. Raises StoreError with a plain sentence."""
    if not database:
        from server.sqlite_store import SqliteJobStore
        return SqliteJobStore(storage_dir, private=private)
    scheme = database.split(":", 1)[0].lower()
    if scheme == "sqlite" and database.lower().startswith("sqlite:///"):
        from server.sqlite_store import SqliteJobStore
        path = Path(database[len("sqlite:///"):])
        return SqliteJobStore(path.parent, private=private, name=path.name)
    if scheme in ("postgresql", "postgres"):
        try:
            from server.postgres_store import PostgresJobStore
        except ImportError:  # the installable app leaves it out
            raise StoreError("This copy of the program cannot keep its history in PostgreSQL: "
                             "run the server from the source (README, \"Several servers\").") from None
        return PostgresJobStore(database, private=private)
    raise StoreError(f"The database address {shown_address(database)!r} is not one this server "
                     "can use: "
                     "give sqlite:///PATH or postgresql://USER@HOST/DATABASE (--database, "
                     "DATABASE_URL).")


def shown_address(url: str) -> str:
    """A database address as it may be shown or logged: without its password, whether in the
    URL (`user:secret@`, even unencoded) or as a keyword (`password=secret`)."""
    url = re.sub(r"(://[^:/@]*):.*@", r"\1@", url)
    return re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1***", url, flags=re.IGNORECASE)


def _record(row: Sequence) -> JobRecord:
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
