"""The desktop path: the real window and its embedded server in one process, one upload.

Prints one JSON line: seconds from Process to the result, event-loop ticks and the longest gap.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop_app.event_loop import WindowLoop  # noqa: E402
from desktop_app.main_window import MainWindow  # noqa: E402
from desktop_app.server_runner import EmbeddedServer  # noqa: E402
from server.app import ServerConfig  # noqa: E402


def main() -> int:
    path = Path(sys.argv[1])
    app = QApplication([])
    outcome: dict = {}
    with tempfile.TemporaryDirectory() as storage:
        loop = WindowLoop()
        server = EmbeddedServer(ServerConfig(storage_dir=Path(storage)), loop.loop)
        window = MainWindow(server.address, server, loop=loop)
        window.show()
        window.select_file(path)
        ticks: list[float] = []
        timer = QTimer()
        timer.timeout.connect(lambda: ticks.append(time.monotonic()))

        def finished(job) -> None:
            outcome["seconds"] = time.monotonic() - outcome.pop("started")
            outcome["rows"] = job.rows_processed
            timer.stop()
            window.close()

        def failed(message: str) -> None:
            outcome["error"] = message
            window.close()

        def start() -> None:
            timer.start(10)
            outcome["started"] = time.monotonic()
            window.start_upload()

        window.upload_finished.connect(finished)
        window.upload_failed.connect(failed)
        QTimer.singleShot(100, start)
        app.exec()
        loop.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])] or [0.0]
    outcome.update(ticks=len(ticks), longest_gap_ms=round(max(gaps) * 1000, 1))
    print(json.dumps(outcome))
    return 0 if "seconds" in outcome else 1


if __name__ == "__main__":
    sys.exit(main())
