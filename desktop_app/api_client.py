"""Unary calls to the server that never block the window: results arrive as queued slots."""

from __future__ import annotations

from typing import Any, Callable

import grpc
from PySide6.QtCore import QObject, Signal, Slot

from wording.rpc_errors import describe_rpc_error


class ApiClient(QObject):
    """Runs a call as a gRPC future and hands its outcome to callbacks on the GUI thread."""

    _completed = Signal(object, object)  # (on_result, on_error), future

    def __init__(self, address: str, tls: bool = False, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.address = address
        self._tls = tls
        self._completed.connect(self._dispatch)

    def call(self, method: grpc.UnaryUnaryMultiCallable, request: Any,
             on_result: Callable[[Any], None], on_error: Callable[[str], None],
             timeout: float = 10.0) -> None:
        """Starts method(request); on_result(reply) or on_error(sentence) runs on this thread."""
        future = method.future(request, timeout=timeout)
        # The callback runs on a gRPC thread: it only emits, and Qt queues the slot here.
        future.add_done_callback(lambda done: self._completed.emit((on_result, on_error), done))

    @Slot(object, object)
    def _dispatch(self, callbacks: tuple, future: grpc.Future) -> None:
        on_result, on_error = callbacks
        try:
            reply = future.result()
        except grpc.FutureCancelledError:
            return
        except grpc.RpcError as error:
            on_error(describe_rpc_error(error, self.address, self._tls))
            return
        on_result(reply)
