"""The job history in PostgreSQL (psycopg 3): one database shared by several servers."""

from __future__ import annotations

import logging
import re
import secrets
from contextlib import contextmanager
from typing import Iterator

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from server.job_store import (SCHEMA_VERSION, HistoryUnavailable, JobStore, StoreError,
                              shown_address)

# Connections to the database: each call holds one for a few milliseconds (a job talks to the
# history when it starts, names its file and ends; the lease every few seconds). KEPT_OPEN are
# opened at start and kept, enough for 8 uploads at once (bench/load.py --behind-nginx: the
# count no longer grows from round to round); a few more only under a burst. Fewer kept open
# come back sooner after the database restarts (1.8 s with 1, 6.8 s with 10).
KEPT_OPEN = 4
POOL_SIZE = 10
# How long a call waits for one of the pool's connections, then for one of its own (the pool
# reconnects after an outage with growing pauses; a connection of the call's own finds the
# database back at once), before the history counts as unavailable for that call.
POOL_WAIT_SECONDS = 2.0
CONNECT_SECONDS = 5.0
STATEMENT_MILLISECONDS = 15_000
# Taken while the schema is made or upgraded, so that servers starting together take turns.
_SCHEMA_LOCK = 0x5A1E5C5F

# The schema at each version; a database of an earlier version is brought up to date in place.
# (PostgreSQL histories start at version 3, the first that could be shared.)
_UPGRADES = {
    3: """
        CREATE TABLE jobs (
            job_id TEXT PRIMARY KEY,
            state INTEGER NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            filename TEXT NOT NULL DEFAULT '',
            output_path TEXT NOT NULL DEFAULT '',
            rejected_path TEXT NOT NULL DEFAULT '',
            finished_at DOUBLE PRECISION,
            rows_processed BIGINT NOT NULL DEFAULT 0,
            rows_rejected BIGINT NOT NULL DEFAULT 0,
            bytes_received BIGINT NOT NULL DEFAULT 0,
            error TEXT NOT NULL DEFAULT '',
            department_count BIGINT NOT NULL DEFAULT 0,
            encoding TEXT NOT NULL DEFAULT '',
            delimiter TEXT NOT NULL DEFAULT '',
            department_names BYTEA NOT NULL DEFAULT '',
            department_totals BYTEA NOT NULL DEFAULT '',
            department_codec TEXT NOT NULL DEFAULT '',
            rejected_samples TEXT NOT NULL DEFAULT '[]',
            server_id TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX jobs_by_time ON jobs (created_at);
        CREATE INDEX jobs_running ON jobs (server_id) WHERE state = 1;
        CREATE TABLE servers (
            server_id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            settings TEXT NOT NULL DEFAULT '',
            renewed_at DOUBLE PRECISION NOT NULL
        );
        CREATE TABLE settings (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
    """,
}


class _Cursor:
    """A psycopg cursor that takes the store's `?` parameters."""

    def __init__(self, cursor: psycopg.Cursor) -> None:
        self._cursor = cursor

    def execute(self, sql: str, parameters=()) -> None:
        self._cursor.execute(sql.replace("?", "%s"), parameters)

    def executemany(self, sql: str, rows) -> None:
        self._cursor.executemany(sql.replace("?", "%s"), rows)

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class PostgresJobStore(JobStore):
    """The history in the PostgreSQL database `url` names; several servers may share it."""

    shared = True
    NOW_SQL = "EXTRACT(EPOCH FROM clock_timestamp())::DOUBLE PRECISION"

    def __init__(self, url: str, private: bool = True) -> None:
        """Connects and makes or upgrades the schema; raises StoreError with a plain sentence
        if the database cannot be used."""
        self.file_mode = 0o600 if private else 0o640
        self.folder_mode = 0o700 if private else 0o750
        self.description = shown_address(url)
        # The pool says every failed reconnection in two lines at WARNING; the lease says an
        # outage once, at ERROR, and when it is over.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        settings = {"connect_timeout": int(CONNECT_SECONDS), "application_name": "sales-csv",
                    "options": f"-c statement_timeout={STATEMENT_MILLISECONDS}"}
        # Each connection is checked as it is taken (one round trip), so that the first calls
        # after the database restarted do not fail on connections it closed.
        self._url, self._settings = url, settings
        self.longest_wait_seconds = POOL_WAIT_SECONDS + CONNECT_SECONDS
        self._pool = ConnectionPool(url, min_size=KEPT_OPEN, max_size=POOL_SIZE,
                                    timeout=POOL_WAIT_SECONDS,
                                    open=False, kwargs=settings, name="sales-csv-history",
                                    check=ConnectionPool.check_connection)
        try:
            # One connection first: what keeps it from connecting is said at once, in
            # PostgreSQL's words, rather than after the pool's retries.
            with psycopg.connect(url, **settings) as connection:
                self._upgrade_schema(connection)
                self.page_token_key = self._key(connection)
            self._pool.open(wait=True, timeout=CONNECT_SECONDS)
        except (psycopg.Error, PoolTimeout) as exc:
            self._pool.close()
            raise StoreError(f"Cannot use the job history database {self.description}: "
                             f"{_reason(exc)}. Check --database (DATABASE_URL) and that "
                             "PostgreSQL is running and lets this server in.") from None

    @staticmethod
    def _upgrade_schema(connection: psycopg.Connection) -> None:
        with connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER)")
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            version = row[0] if row else 0
            if version > SCHEMA_VERSION:
                raise psycopg.DataError(f"unknown schema version {version}, made by a newer "
                                        "server")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                if step in _UPGRADES:
                    connection.execute(_UPGRADES[step])
            if row is None:
                connection.execute("INSERT INTO schema_version VALUES (%s)", (SCHEMA_VERSION,))
            else:
                connection.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))

    @staticmethod
    def _key(connection: psycopg.Connection) -> bytes:
        with connection.transaction():
            connection.execute("INSERT INTO settings (name, value) VALUES (%s, %s) "
                               "ON CONFLICT (name) DO NOTHING",
                               ("page_token_key", secrets.token_bytes(32)))
            return bytes(connection.execute("SELECT value FROM settings WHERE name = %s",
                                            ("page_token_key",)).fetchone()[0])

    @contextmanager
    def _transaction(self) -> Iterator[_Cursor]:
        try:
            with self._connection() as connection, connection.transaction(), \
                    connection.cursor() as cursor:
                yield _Cursor(cursor)
        except (psycopg.Error, PoolTimeout) as exc:
            raise HistoryUnavailable(
                "The server cannot reach its job history (a database) just now; try again in "
                "a moment.",
                f"the job history database {self.description} cannot be used: "
                f"{_reason(exc)}") from None

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """One of the pool's connections, or, when the pool has none to give within
        POOL_WAIT_SECONDS (all busy, or reconnecting after an outage), one of the call's own."""
        try:
            connection = self._pool.getconn()
        except PoolTimeout:
            with psycopg.connect(self._url, **self._settings) as own:
                yield own
            return
        try:
            yield connection
        finally:
            self._pool.putconn(connection)

    def close(self) -> None:
        self._pool.close()


def _reason(exc: BaseException) -> str:
    """What PostgreSQL (or libpq) said, in a few words, with a hint where one helps."""
    if isinstance(exc, PoolTimeout):
        return f"it did not answer within {CONNECT_SECONDS:g} s"
    text = " ".join(str(exc).split()) or type(exc).__name__
    text = re.sub(r"^(connection failed: )?(connection to server at .*?, port \d+ failed: )?",
                  "", text)
    text = re.sub(r"^(FATAL|ERROR): +", "", text)
    text = re.sub(r" Is the server running on that host.*$", "", text)
    if "no password supplied" in text:
        return ("it asks for a password and none was given: put it in the URL "
                "(postgresql://USER:PASSWORD@HOST/DB), in PGPASSWORD or in ~/.pgpass")
    if "password authentication failed" in text:
        return f"{text}: check the password (in the URL, PGPASSWORD or ~/.pgpass)"
    if "invalid integer value" in text or "invalid connection option" in text \
            or "missing \"=\"" in text:
        return ("the address is not one PostgreSQL understands (expected "
                "postgresql://USER@HOST:PORT/DATABASE)")
    return text
