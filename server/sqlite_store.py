"""The job history in an SQLite file under STORAGE_DIR: embedded, survives restarts, one server
at a time (a lock file keeps a second one out)."""

from __future__ import annotations

import fcntl
import os
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from server.job_store import SCHEMA_VERSION, HistoryUnavailable, JobStore, StorageInUse, StoreError

DATABASE_NAME = "jobs.sqlite3"
LOCK_NAME = "server.lock"

# The schema, one step per version: a history of any earlier version is brought up to date in
# place. (Version 1 stored department blobs uncompressed; they stay as they are.)
_UPGRADES = {
    1: """
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
            rejected_samples TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX jobs_by_time ON jobs (created_at);
    """,
    2: "ALTER TABLE jobs ADD COLUMN department_codec TEXT NOT NULL DEFAULT '';",
    3: """
        ALTER TABLE jobs ADD COLUMN server_id TEXT NOT NULL DEFAULT '';
        CREATE TABLE servers (
            server_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '',
            renewed_at REAL NOT NULL
        );
        CREATE TABLE settings (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    """,
}


class SqliteJobStore(JobStore):
    """The history in storage_dir / name, locked for this server while open."""

    # julianday() has millisecond precision; unixepoch('subsec') needs SQLite 3.42.
    NOW_SQL = "((julianday('now') - 2440587.5) * 86400.0)"

    def __init__(self, storage_dir: Path, private: bool = True,
                 name: str = DATABASE_NAME) -> None:
        """Opens (or creates) the history; raises StoreError with a plain sentence if it cannot.
        A folder and files it creates are its user's only (0700, 0600) when private, else
        readable by the user's group too (0750, 0640)."""
        self.file_mode = 0o600 if private else 0o640
        self.folder_mode = 0o700 if private else 0o750
        self.path = storage_dir / name
        self.description = str(self.path)
        lock_name = LOCK_NAME if name == DATABASE_NAME else f"{name}.lock"
        try:
            storage_dir.mkdir(mode=self.folder_mode, parents=True, exist_ok=True)
            self._lock_file = os.fdopen(os.open(storage_dir / lock_name,
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
            self._upgrade_schema()
            problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(problem)
            self.page_token_key = self._key()
        except (sqlite3.DatabaseError, OSError) as exc:
            self._lock_file.close()
            problem = " ".join(str(exc).split())  # SQLite's report may run over lines
            if isinstance(exc, sqlite3.OperationalError) and "locked" in problem:
                raise StoreError(f"Another program is using the job history {self.path} "
                                 f"({problem}). Close it (or wait for it to finish), then start "
                                 "the server again.") from None
            raise StoreError(f"The job history {self.path} is damaged or unreadable ({problem}). "
                             "It was left as it is: move it away (or restore a backup) to "
                             "start with an empty history.") from None

    def _upgrade_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION or version < 0:
            raise sqlite3.DatabaseError(f"unknown schema version {version}")
        for step in range(version + 1, SCHEMA_VERSION + 1):
            self._db.executescript(f"BEGIN; {_UPGRADES[step]} PRAGMA user_version = {step}; "
                                   "COMMIT;")

    def _key(self) -> bytes:
        self._db.execute("INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)",
                         ("page_token_key", secrets.token_bytes(32)))
        return bytes(self._db.execute("SELECT value FROM settings WHERE name = ?",
                                      ("page_token_key",)).fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._mutex:
            if _identity(self.path) != self._identity:
                raise HistoryUnavailable(
                    f"The job history {self.path} was removed or replaced while the server was "
                    "running, so jobs can no longer be recorded. Restore it, then restart the "
                    "server.")
            try:
                self._db.execute("BEGIN")
                try:
                    yield self._db.cursor()
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                raise HistoryUnavailable(
                    f"The job history {self.path} failed ({exc}), so jobs can no longer be "
                    "recorded. Check the disk and the file, then restart the server.") from None

    def close(self) -> None:
        with self._mutex:
            self._db.close()
            self._lock_file.close()


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file path is (device, inode), or None if there is none."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino
