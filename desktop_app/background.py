"""Work that would stall the window (building, combining or saving a million-row table) done on
a thread, its outcome handed back to the GUI thread."""

from __future__ import annotations

import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal, Slot


class Background(QObject):
    """run(work, on_result, on_error): work() on a thread of its own; on_result(value) or
    on_error(exception) then runs on the GUI thread. Threads are joined by wait()."""

    _done = Signal(object, object, object)  # (on_result, on_error), value, exception

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._threads: list[threading.Thread] = []
        self._done.connect(self._dispatch)

    def run(self, work: Callable[[], Any], on_result: Callable[[Any], None],
            on_error: Callable[[Exception], None]) -> None:
        def task() -> None:
            try:
                value = work()
            except Exception as exc:  # handed to on_error, which says it in a sentence
                self._done.emit((on_result, on_error), None, exc)
            else:
                self._done.emit((on_result, on_error), value, None)

        self._threads = [thread for thread in self._threads if thread.is_alive()]
        thread = threading.Thread(target=task, name="window-background", daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float = 30.0) -> None:
        """Waits for the work started so far (closing the window)."""
        for thread in self._threads:
            thread.join(timeout)

    @Slot(object, object, object)
    def _dispatch(self, callbacks: tuple, value: Any, error: Exception | None) -> None:
        on_result, on_error = callbacks
        if error is not None:
            on_error(error)
        else:
            on_result(value)
