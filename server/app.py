"""Builds the gRPC server that both `serve` and the desktop window run."""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from server.aggregation import Aggregator
from server.event_loop import EventLoopThread
from server.job_replies import SERVICE_NAME, add_to_server, encode_departments
from server.job_store import StorageInUse, StoreError, open_store
from server.jobs import JobManager
from server.limits import DEFAULT_LEASE_SECONDS, DEFAULT_STORAGE_DIR, Limits
from server.request_guard import UnreadableRequests
from server.start_checks import cannot_bind, check_writable
from server.security import TlsFiles, TokenInterceptor
from server.servicer import SalesServicer

log = logging.getLogger(__name__)

# Chunks may be up to this size; replies carry every department, so they are unbounded.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# gRPC itself refuses messages past this (with a status of its own, before the servicer sees
# them, so that the job is recorded as a call that ended: CANCELLED); between the two the
# servicer refuses them in its own words and records why. gRPC holds a whole message in memory
# before anyone may look at it: this is the most one message can cost.
_TRANSPORT_MESSAGE_BYTES = 64 * 1024 * 1024
# HTTP/2 keepalive: a peer that vanished (cable pulled, machine asleep) is noticed and its
# calls cancelled, so that its upload frees its slot (measured: 88 s for a frozen client).
_KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # Clients that ping (grpc-js with keepalive on) may, every 10 s at the most.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 2),
]
# Threads for the server's blocking work besides aggregation (each upload has a thread of
# its own): one per upload slot for its reply and its end, plus room for status and
# history calls.
_SPARE_WORKERS = 8
_DAY_SECONDS = 24 * 60 * 60
# How long running calls may go on once a stop is asked for (Ctrl-C, SIGTERM).
STOP_GRACE_SECONDS = 5.0
# After the grace period, how long stop() waits for the cut-off uploads to be recorded.
_DRAIN_SECONDS = 10.0


@dataclass(frozen=True)
class ServerConfig:
    """Where a server keeps its files and what it accepts."""

    storage_dir: Path = Path(DEFAULT_STORAGE_DIR)
    output_dir: Path | None = None  # default: storage_dir / "processed"
    limits: Limits = field(default_factory=Limits)
    tls: TlsFiles | None = None  # serve TLS instead of plaintext
    token: str | None = None  # every call but health must carry `authorization: Bearer <token>`
    # Storage folders 0700 and files 0600; False: readable by the user's group (0750, 0640).
    private_storage: bool = True
    # Jobs that ended more than this many days ago are deleted, files and all (at start, then
    # once a day); None keeps every job.
    keep_days: float | None = None
    # Where the job history is: None for STORAGE_DIR's SQLite file, else a database URL
    # (sqlite:///PATH, or postgresql://... shared by several servers; server/job_store.py).
    database: str | None = None
    # A server that has not renewed its lease for this long is taken for gone by the others
    # sharing its history, and its running jobs are marked FAILED (server/leases.py).
    lease_seconds: float = DEFAULT_LEASE_SECONDS

    @property
    def resolved_output_dir(self) -> Path:
        """The absolute output folder."""
        return (self.output_dir or self.storage_dir / "processed").resolve()


# Exit codes of `serve` for what keeps it from starting (and server/security.py's).
EXIT_STORAGE = 3  # the storage or output folder, or the history in it, cannot be used
EXIT_ADDRESS = 5  # the address cannot be listened on


class ServerStartError(Exception):
    """The server cannot start; the message is a plain sentence."""

    def __init__(self, message: str, *, storage_in_use: bool = False,
                 exit_code: int = EXIT_STORAGE) -> None:
        super().__init__(message)
        self.storage_in_use = storage_in_use  # another server holds the storage folder
        self.exit_code = exit_code


class SalesServer:
    """A started or startable gRPC server with its job history; stop() releases both.

    The server serves on an asyncio event loop that runs on another thread: its own, or one it
    was given. start() and stop() block until done and may be called from any thread but that
    loop's.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, grpc_server: grpc.aio.Server,
                 servicer: SalesServicer, jobs: JobManager, health_servicer,
                 executor: futures.Executor, own_loop: EventLoopThread | None,
                 keep_days: float | None = None) -> None:
        self._loop = loop
        self._retention = _Retention(jobs, keep_days, loop, executor) if keep_days else None
        self._server = grpc_server
        self._servicer = servicer
        self._health = health_servicer
        self._jobs = jobs
        self._executor = executor
        self._own_loop = own_loop
        self._stopped = False

    def start(self) -> None:
        """Starts serving; does not block."""
        asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result()
        if self._retention is not None:
            self._loop.call_soon_threadsafe(self._retention.arm)

    def stop(self, grace: float | None = STOP_GRACE_SECONDS) -> None:
        """Reports NOT_SERVING and refuses new calls; lets running calls end on their own for
        `grace` seconds (an upload cancelled by its client meanwhile is CANCELLED), then cuts
        the rest off (an upload FAILED), waits for them to be recorded and closes the history;
        safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._retention is not None:
            self._loop.call_soon_threadsafe(self._retention.disarm)
        asyncio.run_coroutine_threadsafe(self._stop(grace), self._loop).result()
        if not self._jobs.wait_idle(_DRAIN_SECONDS):
            log.warning("some uploads were still ending after %.0f s", _DRAIN_SECONDS)
        self._executor.shutdown(wait=True)
        if self._own_loop is not None:
            self._own_loop.stop()
        self._jobs.close()

    async def _stop(self, grace: float | None) -> None:
        await self._health.enter_graceful_shutdown()
        refusing = None
        if grace:
            # Refuses new calls at once and lets running ones end on their own. The cut-off
            # below comes first: this longer grace is only a backstop, so that no call is cut
            # off before the servicer knows it.
            deadline = self._loop.time() + grace
            refusing = asyncio.ensure_future(self._server.stop(2 * grace))
            await self._server.wait_for_termination(grace)
            # A call its client cancelled is over before its handler has recorded the job as
            # cancelled: let that finish too, within the same grace.
            await self._loop.run_in_executor(self._executor, self._jobs.wait_idle,
                                             max(0.0, deadline - self._loop.time()))
        await self._servicer.cut_off()
        await self._server.stop(None)
        if refusing is not None:
            await refusing


class _Retention:
    """Deletes the jobs that ended more than `days` ago, once a day (and at start: delete_old)."""

    def __init__(self, jobs: JobManager, days: float, loop: asyncio.AbstractEventLoop,
                 executor: futures.Executor) -> None:
        self._jobs, self._days, self._loop, self._executor = jobs, days, loop, executor
        self._timer: asyncio.TimerHandle | None = None

    @staticmethod
    def delete_old(jobs: JobManager, days: float) -> None:
        try:
            deleted = jobs.delete_finished_before(time.time() - days * _DAY_SECONDS)
        except StoreError as exc:
            log.error("old jobs could not be deleted: %s", exc)
            return
        if deleted:
            log.info("deleted %d job(s) that ended more than %g days ago", deleted, days)

    def arm(self) -> None:
        """Schedules the next run (on the loop)."""
        self._timer = self._loop.call_later(_DAY_SECONDS, self._run)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _run(self) -> None:
        try:
            self._executor.submit(self.delete_old, self._jobs, self._days)
        except RuntimeError:  # stopped meanwhile
            return
        self.arm()


def create_server(address: str, config: ServerConfig | None = None,
                  loop: asyncio.AbstractEventLoop | None = None) -> tuple[SalesServer, int]:
    """Builds a server bound to address ("127.0.0.1:0" picks a free port); returns it and the
    port. It serves on `loop` if given (an event loop running on another thread, which the
    caller stops after the server), else on a loop of its own. Raises ServerStartError."""
    config = config or ServerConfig()
    try:
        store = open_store(config.database, config.storage_dir, private=config.private_storage)
    except StoreError as exc:
        raise ServerStartError(str(exc), storage_in_use=isinstance(exc, StorageInUse)) from None
    problem = check_writable(config.resolved_output_dir, store.folder_mode)
    if problem:
        store.close()
        raise ServerStartError(problem)
    own_loop = EventLoopThread("grpc-server") if loop is None else None
    loop = loop or own_loop.loop
    executor = futures.ThreadPoolExecutor(
        max_workers=config.limits.max_concurrent_uploads + _SPARE_WORKERS,
        thread_name_prefix="grpc-worker")
    # On a worker, so that the window shows (and `serve` listens) without waiting for it.
    executor.submit(_warm_up)
    jobs = None
    try:
        jobs = JobManager(store, config.resolved_output_dir, config.limits,
                          config.lease_seconds)
        servicer = SalesServicer(jobs, executor)
        jobs.on_lease_renewed = lambda: _on_loop(loop, servicer.history_answers())
        jobs.on_lease_failed = lambda error: _on_loop(loop, servicer.history_fails(error))
        # An asyncio server belongs to the loop it is made on.
        grpc_server, health_servicer, port = asyncio.run_coroutine_threadsafe(
            _build(address, config, servicer), loop).result()
    except BaseException as exc:
        executor.shutdown()
        if own_loop is not None:
            own_loop.stop()
        if jobs is not None:
            jobs.close()
        else:
            store.close()
        if isinstance(exc, StoreError):
            raise ServerStartError(str(exc)) from None
        raise
    log.info("server for %s on %s (port %s), history %s, output %s", SERVICE_NAME, address,
             port, store.description, config.resolved_output_dir)
    if config.keep_days:
        _Retention.delete_old(jobs, config.keep_days)
    return SalesServer(loop, grpc_server, servicer, jobs, health_servicer, executor,
                       own_loop, config.keep_days), port


def _on_loop(loop: asyncio.AbstractEventLoop, coroutine) -> None:
    """Runs coroutine on loop, unless the loop has stopped."""
    try:
        asyncio.run_coroutine_threadsafe(coroutine, loop)
    except RuntimeError:
        coroutine.close()


def _warm_up() -> None:
    """Aggregates a two-row file, so that what Arrow and numpy load on first use (the grouping
    engine, numpy.ma: about 45 ms here, bench/README.md) is loaded at start-up rather than
    during the first upload."""
    aggregator = Aggregator()
    aggregator.feed(b"Department Name,Number of Sales\nA,1\nB,2\n")
    encode_departments(aggregator.finish().totals)


async def _build(address: str, config: ServerConfig, servicer: SalesServicer):
    grpc_server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", _TRANSPORT_MESSAGE_BYTES),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
            *_KEEPALIVE_OPTIONS,
        ],
        # The guard first: it also answers the requests of a call the token refuses.
        interceptors=[UnreadableRequests(MAX_MESSAGE_BYTES, f"/{SERVICE_NAME}/UploadCSV"),
                      *([TokenInterceptor(config.token)] if config.token else [])],
    )
    add_to_server(servicer, grpc_server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def not_serving() -> None:
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def serving() -> None:
        for name in ("", SERVICE_NAME):
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

    servicer.on_history_unavailable = not_serving
    servicer.on_history_available = serving
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), grpc_server)
    problem = cannot_bind(address)
    if problem:
        raise ServerStartError(f"Cannot listen on {address}: {problem}.", exit_code=EXIT_ADDRESS)
    try:
        if config.tls is not None:
            port = grpc_server.add_secure_port(address, config.tls.server_credentials())
        else:
            port = grpc_server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise ServerStartError(f"Cannot listen on {address}: the address is in use or not "
                               "available on this machine.", exit_code=EXIT_ADDRESS)
    return grpc_server, health_servicer, port
