"""Builds the gRPC server that both `serve` and the desktop window run."""

from __future__ import annotations

import asyncio
import logging
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from salesapi.loop_thread import EventLoopThread
from server.job_store import JobStore
from server.jobs import JobManager, Limits
from server.security import TlsFiles, TokenInterceptor
from server.servicer import SERVICE_NAME, SalesServicer, add_to_server

log = logging.getLogger(__name__)

# Chunks may be up to this size; replies carry every department, so they are unbounded.
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
# Threads for blocking work: one per upload slot, plus room for status and history calls.
_SPARE_WORKERS = 8
_DRAIN_SECONDS = 10.0


@dataclass(frozen=True)
class ServerConfig:
    """Where a server keeps its files and what it accepts."""

    storage_dir: Path = Path("storage")
    output_dir: Path | None = None  # default: storage_dir / "processed"
    limits: Limits = field(default_factory=Limits)
    tls: TlsFiles | None = None  # serve TLS instead of plaintext
    token: str | None = None  # every call but health must carry `authorization: Bearer <token>`

    @property
    def resolved_output_dir(self) -> Path:
        """The absolute output folder."""
        return (self.output_dir or self.storage_dir / "processed").resolve()


class SalesServer:
    """A started or startable gRPC server with its job history; stop() releases both.

    The server runs on an asyncio event loop of its own thread (`loop`); its blocking work runs
    on that loop's thread pool. start() and stop() may be called from any other thread.
    """

    def __init__(self, loop_thread: EventLoopThread, grpc_server: grpc.aio.Server,
                 servicer: SalesServicer, jobs: JobManager, health_servicer) -> None:
        self._loop_thread = loop_thread
        self._server = grpc_server
        self._servicer = servicer
        self._health = health_servicer
        self.jobs = jobs
        self._stopped = False

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop serving calls. A gRPC client on this same loop streams to the server
        without a thread hand-off per message: the window uploads that way."""
        return self._loop_thread.loop

    def start(self) -> None:
        """Starts serving; does not block."""
        self._loop_thread.run(self._server.start())

    def stop(self, grace: float | None = 5.0) -> None:
        """Reports NOT_SERVING, lets running calls finish for `grace` seconds, then ends them,
        waits for their jobs to be recorded and closes the history; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._servicer.stopping = True  # an upload cut off from here on was stopped, not cancelled
        self._loop_thread.run(self._stop(grace))
        if not self.jobs.wait_idle(_DRAIN_SECONDS):
            log.warning("some uploads were still ending after %.0f s", _DRAIN_SECONDS)
        self._loop_thread.stop()
        self.jobs.store.close()

    async def _stop(self, grace: float | None) -> None:
        await self._health.enter_graceful_shutdown()
        await self._server.stop(grace)


def create_server(address: str, config: ServerConfig | None = None) -> tuple[SalesServer, int]:
    """Builds a server bound to address ("127.0.0.1:0" picks a free port); returns it and the
    port. Raises StoreError if the history cannot be opened, RuntimeError if the address
    cannot be bound."""
    config = config or ServerConfig()
    store = JobStore(config.storage_dir)  # StoreError: damaged, locked or in use
    loop_thread = EventLoopThread("grpc-server", futures.ThreadPoolExecutor(
        max_workers=config.limits.max_concurrent_uploads + _SPARE_WORKERS,
        thread_name_prefix="grpc-worker"))
    try:
        jobs = JobManager(store, config.resolved_output_dir, config.limits)
        servicer = SalesServicer(jobs)
        # An asyncio server belongs to the loop it is made on.
        grpc_server, health_servicer, port = loop_thread.run(
            _build(address, config, servicer))
    except BaseException:
        loop_thread.stop()
        store.close()
        raise
    log.info("server for %s on %s (port %s), storage %s, output %s", SERVICE_NAME, address, port,
             config.storage_dir, config.resolved_output_dir)
    return SalesServer(loop_thread, grpc_server, servicer, jobs, health_servicer), port


async def _build(address: str, config: ServerConfig, servicer: SalesServicer):
    grpc_server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ],
        interceptors=[TokenInterceptor(config.token)] if config.token else None,
    )
    add_to_server(servicer, grpc_server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), grpc_server)
    try:
        if config.tls is not None:
            port = grpc_server.add_secure_port(address, config.tls.server_credentials())
        else:
            port = grpc_server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise RuntimeError(f"Cannot listen on {address}: the address is in use or not "
                           "available on this machine.")
    return grpc_server, health_servicer, port
