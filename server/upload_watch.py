"""How long an upload may go on without a byte before the server ends it."""

from __future__ import annotations

import asyncio


class UploadIdle(Exception):
    """No bytes arrived for the idle timeout; the message is a plain sentence."""


class IdleWatch:
    """Ends the upload task it runs in (as a cancellation with `expired` set) once no byte has
    arrived for `seconds`; messages without data do not count. One timer per upload, re-armed
    when it fires early, rather than a timeout around every read."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._last = self._loop.time()
        self._timer = self._loop.call_later(seconds, self._check)

    def saw_bytes(self) -> None:
        """Bytes arrived (or the upload was busy aggregating, not waiting for the client)."""
        self._last = self._loop.time()

    def stop(self) -> None:
        self._timer.cancel()

    def _check(self) -> None:
        remaining = self._last + self.seconds - self._loop.time()
        if remaining > 0:
            self._timer = self._loop.call_later(remaining, self._check)
            return
        self.expired = True
        self._task.cancel()

    def error(self) -> "UploadIdle":
        """The error to raise instead of the cancellation it caused."""
        self._task.uncancel()
        return UploadIdle(f"No data arrived for {self.seconds:g} seconds, so the upload was "
                          "ended. Send the file again.")
