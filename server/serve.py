"""`python main.py serve`: runs the server until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import signal
import threading

from server.app import ServerConfig, create_server
from server.memory import configure_process

log = logging.getLogger(__name__)


def serve(host: str, port: int, config: ServerConfig) -> int:
    """Serves until a stop signal; returns the exit code. Raises ServerStartError."""
    configure_process()
    # Past a file-size limit, a write should fail with EFBIG (one job FAILED), not kill us.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    server, bound = create_server(f"{host}:{port}", config)
    stop = threading.Event()

    def request_stop(signum, _frame) -> None:
        log.info("received %s; stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        # The line tools and tests wait for: the address really listened on.
        protection = ("TLS" if config.tls else "plaintext") + (", token required" if config.token
                                                                else "")
        print(f"Sales CSV server listening on {host}:{bound} ({protection}; "
              f"output: {config.resolved_output_dir})", flush=True)
        stop.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("stopped")
    return 0
