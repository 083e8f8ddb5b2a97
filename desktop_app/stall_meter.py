"""How long the window's event loop goes without running: the longest gap between the ticks of
a short timer on the GUI thread. The benchmark and the tests measure freezes with it, and with
LOG_LEVEL=DEBUG the window logs each stall longer than a tenth of a second."""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)


class StallMeter(QObject):
    """Ticks every interval_ms while started; longest_ms is the longest time between ticks
    (a tick due while the GUI thread is busy arrives late by that much)."""

    def __init__(self, interval_ms: int = 10, log_over_ms: float | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._log_over = log_over_ms
        self._last = 0.0
        self.longest_ms = 0.0

    def start(self) -> None:
        """Starts measuring afresh."""
        self.longest_ms = 0.0
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> float:
        """Stops; returns the longest gap in milliseconds, the last one included."""
        self._tick()
        self._timer.stop()
        return self.longest_ms

    def _tick(self) -> None:
        now = time.perf_counter()
        gap = (now - self._last) * 1000
        self._last = now
        self.longest_ms = max(self.longest_ms, gap)
        if self._log_over is not None and gap > self._log_over:
            log.debug("the window did not respond for %.0f ms", gap)
