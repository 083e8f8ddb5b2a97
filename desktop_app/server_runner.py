"""The gRPC server the window starts in its own process, on 127.0.0.1 with a free port."""

from __future__ import annotations

import logging

from server.app import SalesServer, ServerConfig, create_server

log = logging.getLogger(__name__)

# Closing the window should feel instant; uploads are cancelled before this anyway.
_STOP_GRACE_SECONDS = 1.0
_SETTLE_SECONDS = 2.0


class EmbeddedServer:
    """Owns a server built by create_server, the same factory `serve` uses."""

    def __init__(self, config: ServerConfig) -> None:
        """Starts serving at once; raises StoreError or RuntimeError with a plain message."""
        self._server: SalesServer
        self._server, self.port = create_server("127.0.0.1:0", config)
        self._server.start()
        self.address = f"127.0.0.1:{self.port}"
        self.config = config
        log.info("embedded server on %s", self.address)

    @property
    def loop(self):
        """The server's event loop; the window runs its uploads on it."""
        return self._server.loop

    def stop(self) -> None:
        """Stops serving and releases the storage folder; safe to call twice.

        The window cancels its upload before stopping: the server is first given a moment to
        record that job as cancelled, rather than as cut off by the stop."""
        self._server.jobs.wait_idle(_SETTLE_SECONDS)
        self._server.stop(_STOP_GRACE_SECONDS)
