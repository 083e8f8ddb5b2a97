"""The status line's word on whether files can be processed, from the server's health check."""

from __future__ import annotations

from grpc_health.v1 import health_pb2, health_pb2_grpc
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QLabel

from desktop_app.api_client import ApiClient

_INTERVAL_MS = 5_000


class HealthLabel(QLabel):
    """Asks the server's health check every 5 s (and on check()): plain words on screen,
    the server's address, for whoever asks, in the tooltip."""

    checked = Signal(bool)  # whether the server answered SERVING

    def __init__(self, channel, api: ApiClient, address: str, built_in: bool) -> None:
        super().__init__("● Starting…")
        self.setAccessibleName("Whether files can be processed")
        self._health = health_pb2_grpc.HealthStub(channel)
        self._api = api
        self._where = f"{'Built-in server' if built_in else 'Server'} at {address}"
        self._busy = False
        self._healthy, self._state = True, "starting"
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)
        self._timer.start(_INTERVAL_MS)

    def check(self) -> None:
        self._api.call(self._health.Check, health_pb2.HealthCheckRequest(), self._answered,
                       lambda _message: self._show(False, "not reachable"), timeout=3)

    def stop(self) -> None:
        self._timer.stop()

    def _answered(self, reply: health_pb2.HealthCheckResponse) -> None:
        healthy = reply.status == health_pb2.HealthCheckResponse.SERVING
        self._show(healthy, "healthy" if healthy else "not serving")

    def set_busy(self, busy: bool) -> None:
        """While files are processed the status says so rather than "Ready"."""
        self._busy = busy
        self._show(self._healthy, self._state)

    def _show(self, healthy: bool, text: str) -> None:
        self._healthy, self._state = healthy, text
        colour = "#1e7d32" if healthy else "#b3261e"
        words = "Ready" if healthy else "Not available: files cannot be processed right now"
        if healthy and self._busy:
            words = "Processing…"
        self.setText(f"<span style='color:{colour}'>●</span> {words}")
        self.setToolTip(f"{self._where}: {text}")
        self.checked.emit(healthy)
