"""The server's own asyncio event loop, on a thread of its own, when no loop is lent to it."""

from __future__ import annotations

import asyncio
import threading


class EventLoopThread:
    """Runs an event loop on a daemon thread until stop()."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stops the loop once its callbacks have run, joins the thread and closes the loop;
        safe to call twice."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
