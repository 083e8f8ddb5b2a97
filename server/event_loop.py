"""An asyncio event loop on a thread of its own, for code that is otherwise synchronous."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Coroutine, TypeVar

T = TypeVar("T")


class EventLoopThread:
    """Runs an event loop on a daemon thread until stop(); any thread may hand it coroutines."""

    def __init__(self, name: str, executor: concurrent.futures.Executor | None = None) -> None:
        """executor, when given, becomes the loop's default (asyncio.to_thread runs there)."""
        self.loop = asyncio.new_event_loop()
        if executor is not None:
            self.loop.set_default_executor(executor)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedules the coroutine on the loop; its outcome arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Runs the coroutine on the loop and waits for its result (never from the loop)."""
        return self.submit(coroutine).result()

    def stop(self) -> None:
        """Stops the loop once its callbacks have run, joins the thread and closes the loop;
        safe to call twice."""
        if self.loop.is_closed():
            return
        self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
