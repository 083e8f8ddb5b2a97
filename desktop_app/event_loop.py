"""The window's asyncio event loop, on a thread of its own."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Coroutine


class WindowLoop:
    """An asyncio loop on a daemon thread. The window's uploads run on it, and so does the
    embedded server it starts (server.app.create_server takes the loop): client and server then
    pass each message without a thread hand-off, which in one process is what keeps an upload
    fast (bench/README.md, target 5)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="window-loop",
                                        daemon=True)
        self._thread.start()

    def submit(self, coroutine: Coroutine[Any, Any, Any]) -> concurrent.futures.Future:
        """Schedules the coroutine on the loop; its outcome arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def stop(self) -> None:
        """Stops the loop and joins its thread; call after whatever runs on it has ended. Safe
        to call twice."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
