"""The window with a file of about 1,000,000 departments: how long its event loop ever goes
without running, phase by phase (the window's goal: never more than 100 ms).

    python bench/window_stalls.py FILE    # prints one JSON line: phase -> longest stall, ms

Phases: receiving (Process until the upload ends), loading (until every department is in the
table), sorting (each column both ways, with the repaint), History (another job, then this one
again, until loaded), saving (Save as CSV, written on a thread). The real window and its
embedded server, offscreen, as `python main.py` runs them.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PySide6.QtCore import QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from desktop_app.event_loop import WindowLoop  # noqa: E402
from desktop_app.main_window import MainWindow  # noqa: E402
from desktop_app.server_runner import EmbeddedServer  # noqa: E402
from desktop_app.stall_meter import StallMeter  # noqa: E402
from server.app import ServerConfig  # noqa: E402

_TIMEOUT_MS = 300_000
_SETTLE_MS = 50  # the repaint and whatever else a step queued


def wait_for(signal, wanted=lambda *args: True) -> tuple:
    """Runs the event loop until signal is emitted with arguments wanted() accepts."""
    loop, got = QEventLoop(), []

    def seen(*args) -> None:
        if wanted(*args):
            got.append(args)
            loop.quit()

    signal.connect(seen)
    QTimer.singleShot(_TIMEOUT_MS, loop.quit)
    loop.exec()
    signal.disconnect(seen)
    if not got:
        raise TimeoutError(f"no {signal} within {_TIMEOUT_MS // 1000} s")
    return got[0]


def settle(milliseconds: int = _SETTLE_MS) -> None:
    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def measure(path: Path, workdir: Path) -> dict[str, float]:
    small = workdir / "small.csv"
    small.write_bytes(b"Department Name,Number of Sales\nToys,1\n")
    loop = WindowLoop()
    server = EmbeddedServer(ServerConfig(storage_dir=workdir / "storage"), loop.loop)
    window = MainWindow(server.address, server, loop=loop)
    window.show()
    meter, stalls = StallMeter(), {}
    try:
        window.select_files([small])
        window.start_upload()
        small_job = wait_for(window.upload_finished)[0].job_id
        settle(300)
        window.select_files([path])
        meter.start()
        window.start_upload()
        job = wait_for(window.upload_finished)[0].job_id
        stalls["receiving"] = meter.stop()
        meter.start()
        wait_for(window.departments_loaded, lambda job_id: job_id == job)
        settle()
        stalls["loading"] = meter.stop()
        meter.start()
        for column in range(window.job_panel.model.columnCount()):
            for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
                window.job_panel.table.sortByColumn(column, order)
                settle()
        stalls["sorting"] = meter.stop()
        meter.start()
        window.show_history_job(small_job)
        wait_for(window.job_shown)
        window.show_history_job(job)
        wait_for(window.departments_loaded, lambda job_id: job_id == job)
        settle()
        stalls["history"] = meter.stop()
        window.ask_where_to_save = lambda suggested: str(workdir / "totals.csv")
        meter.start()
        window.save_as()
        wait_for(window.table_saved)
        settle()
        stalls["saving"] = meter.stop()
        stalls["departments"] = window.job_panel.model.rowCount()
    finally:
        window.close()
        loop.stop()
    return stalls


def main() -> int:
    app = QApplication([])
    with tempfile.TemporaryDirectory() as workdir:
        stalls = measure(Path(sys.argv[1]), Path(workdir))
    app.quit()
    print(json.dumps({name: round(value, 1) for name, value in stalls.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
