"""Takes the README's screenshot: the real window, after a finished upload, under Xvfb.

Run it as `xvfb-run -a python scripts/screenshot.py docs/window.png`. It starts the embedded
server on a throw-away storage folder, uploads a small generated file through the real stub,
waits for the result, and saves the window with QWidget.grab().
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

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, nargs="?", default=ROOT / "docs" / "window.png")
    parser.add_argument("--size", default="", metavar="WxH",
                        help="the window's size, e.g. 800x600 (default: its own)")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # Two earlier jobs, so that the history has something in it.
        loop = WindowLoop()
        server = EmbeddedServer(ServerConfig(storage_dir=folder / "storage"), loop.loop)
        window = MainWindow(server.address, server, loop=loop)
        if args.size:
            window.resize(*(int(part) for part in args.size.lower().split("x")))
        window.show()
        earlier = folder / "february.csv"
        earlier.write_text("Department Name,Number of Sales\nToys,3\n")
        steps = [earlier, sample_file(folder)]
        outcome: list[str] = []

        def next_step(*_args) -> None:
            if steps:
                window.select_file(steps.pop(0))
                window.start_upload()
            else:
                QTimer.singleShot(300, finish)

        def finish() -> None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(args.out))
            outcome.append(str(args.out))
            window.close()

        window.upload_finished.connect(next_step)
        window.upload_failed.connect(lambda message: (outcome.append(message), window.close()))
        QTimer.singleShot(200, next_step)
        app.exec()
        loop.stop()
    print(outcome[-1] if outcome else "no screenshot taken")
    return 0 if outcome and outcome[-1].endswith(".png") else 1


if __name__ == "__main__":
    sys.exit(main())
