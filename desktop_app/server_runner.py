"""The gRPC server the window starts in its own process, on 127.0.0.1 with a free port."""

from __future__ import annotations

import asyncio
import logging

from server.app import ServerConfig, create_server

log = logging.getLogger(__name__)

# Closing the window should feel instant; its upload is cancelled before the server stops, and
# the grace lets the server record that job as cancelled rather than cut off.
_STOP_GRACE_SECONDS = 1.0


class EmbeddedServer:
    """Owns a server built by create_server, the same factory `serve` uses, serving on the
    window's event loop."""

    def __init__(self, config: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        """Starts serving at once; raises server.app.ServerStartError with a plain message."""
        self._server, self.port = create_server("127.0.0.1:0", config, loop)
        self._server.start()
        self.address = f"127.0.0.1:{self.port}"
        self.config = config
        log.info("embedded server on %s", self.address)

    def stop(self) -> None:
        """Stops serving and releases the storage folder; safe to call twice."""
        self._server.stop(_STOP_GRACE_SECONDS)
