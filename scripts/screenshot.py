"""Takes the README's screenshot: the real window, after a finished upload, under Xvfb.

Run it as `xvfb-run -a python scripts/screenshot.py docs/window.png`. It starts the embedded
server on a throw-away storage folder, uploads generated files through the real stub, waits
for the result, and saves the window with QWidget.grab(). `--scene` picks another moment
(start, running, 1,000,000 departments, 3 files combined, the Save dialog); `--size` the
window's size.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DBUS_SESSION_BUS_ADDRESS", "disabled:")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtGui import QIcon  # noqa: E402
from PySide6.QtWidgets import QApplication, QFileDialog  # noqa: E402

from desktop_app import ICON_PATH  # noqa: E402

from desktop_app.event_loop import WindowLoop  # noqa: E402
from desktop_app.main_window import MainWindow  # noqa: E402
from desktop_app.server_runner import EmbeddedServer  # noqa: E402
from server.app import ServerConfig  # noqa: E402

DEPARTMENTS = ["Electronics", "Clothing", "Home & Garden", "Toys", "Groceries", "Sports",
               "Books", "Beauty", "Automotive", "Pet Supplies", "Music", "Office"]


def sample_file(folder: Path, name: str = "store_sales_march.csv") -> Path:
    """A realistic export: dates, a skewed mix of departments, two bad rows."""
    rng = random.Random(7)
    weights = [30, 22, 14, 11, 9, 6, 4, 3, 2, 1.5, 1, 0.5]
    lines = ["Date,Department Name,Number of Sales"]
    for day in range(1, 32):
        for _ in range(400):
            department = rng.choices(DEPARTMENTS, weights)[0]
            lines.append(f"2026-03-{day:02d},{department},{rng.randint(1, 9)}")
    lines.insert(1207, "2026-03-04,Toys,twelve")
    lines.insert(5120, "2026-03-13,,4")
    lines.append("2026-03-31,Clothing,-3")
    path = folder / name
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


SCENES = ("done", "start", "running", "many", "combined", "save")


def wait_for(signal, seconds: float = 300) -> tuple:
    """Runs the event loop until signal is emitted; its arguments."""
    loop, got = QEventLoop(), []

    def seen(*args) -> None:
        got.append(args)
        loop.quit()

    signal.connect(seen)
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    signal.disconnect(seen)
    if not got:
        raise SystemExit(f"timed out waiting for {signal}")
    return got[0]


def settle(milliseconds: int = 400) -> None:
    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()


def many_departments_file(folder: Path, count: int = 1_000_000) -> Path:
    path = folder / "all_stores_2026.csv"
    rng = random.Random(3)
    with open(path, "w", encoding="utf-8") as out:
        out.write("Date,Department Name,Number of Sales\n")
        out.writelines(f"2026-01-01,Store {n // 100:05d} aisle {n % 100:02d},"
                       f"{rng.randint(1, 500)}\n" for n in range(count))
    return path


def shoot(scene: str, window: MainWindow, folder: Path, out: Path) -> None:
    """Brings the window to the scene and saves it (the whole screen for the Save dialog)."""
    earlier = folder / "february.csv"
    earlier.write_text("Department Name,Number of Sales\nToys,3\n")
    window.select_files([earlier])
    window.start_upload()
    wait_for(window.upload_finished)
    settle()
    if scene == "start":
        window.select_files([])
        window.job_panel.clear("No results yet", "Choose sales CSV files and press Process "
                               "to see the totals per department here.")
        window.file_area.show_outcome("", False)
    elif scene == "running":
        window._chunk_size = 16  # slow enough to be seen running
        window.select_files([sample_file(folder)])
        window.start_upload()
        settle(1200)
        window.grab().save(str(out))
        window.cancel_upload()
        while window.is_uploading():
            settle(100)
        return
    elif scene == "many":
        window.select_files([many_departments_file(folder)])
        window.start_upload()
        wait_for(window.upload_finished)
        settle(50)  # just after Done, before every department is loaded
    elif scene == "combined":
        files = [sample_file(folder, name) for name in
                 ("store_north_march.csv", "store_south_march.csv", "store_online_march.csv")]
        window.select_files(files)
        window.start_upload()
        wait_for(window.files_combined)
    else:  # done, save
        window.select_files([sample_file(folder)])
        window.start_upload()
        wait_for(window.upload_finished)
        wait_for(window.departments_loaded)
    settle()
    if scene == "save":
        dialog = QFileDialog(window, "Save the totals",
                             str(folder / "store_sales_march - totals.xlsx"),
                             "Excel workbook (*.xlsx);;CSV file (*.csv)")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog)
        dialog.show()
        settle(800)
        window.screen().grabWindow(0).save(str(out))
        dialog.close()
        return
    window.grab().save(str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=ROOT / "docs" / "window.png")
    parser.add_argument("--size", default="", metavar="WxH",
                        help="the window's size, e.g. 800x600 (default: its own)")
    parser.add_argument("--scene", choices=SCENES, default="done",
                        help="done (default: after an upload with rejected rows), start, "
                             "running, many (1,000,000 departments just after Done), combined "
                             "(3 files), save (the Save dialog, whole screen)")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Sales CSV Processor")
    app.setWindowIcon(QIcon(str(ICON_PATH)))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loop = WindowLoop()
        server = EmbeddedServer(ServerConfig(storage_dir=folder / "storage"), loop.loop)
        window = MainWindow(server.address, server, loop=loop)
        if args.size:
            window.resize(*(int(part) for part in args.size.lower().split("x")))
        window.show()
        try:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            shoot(args.scene, window, folder, args.out)
        finally:
            window.close()
            loop.stop()
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
