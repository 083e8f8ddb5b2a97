"""The window's fixtures and the ways a test drives it as a user would (pytest plugin, loaded
by conftest.py)."""

from pathlib import Path

import pytest

from desktop_app.event_loop import WindowLoop
from desktop_app.main_window import MainWindow
from desktop_app.server_runner import EmbeddedServer
from server.app import ServerConfig

TIMEOUT_MS = 60_000
SALES = (b"Date,Department Name,Number of Sales\r\n"
         b"2024-01-01,Electronics,1200\r\n2024-01-02,Clothing,5\r\n2024-01-03,Toys,30\r\n"
         b"2024-01-04,Clothing,7\r\n2024-01-05,Toys,oops\r\n")


def big_file(path: Path, megabytes: int) -> Path:
    row = b"2024-01-01,Electronics,3\n2024-01-02,Clothing,4\n"
    with open(path, "wb") as out:
        out.write(b"Date,Department Name,Number of Sales\n")
        block = row * (1_000_000 // len(row))
        for _ in range(megabytes):
            out.write(block)
    return path


@pytest.fixture
def storage(tmp_path) -> Path:
    return tmp_path / "storage"


@pytest.fixture
def window_loop():
    """The event loop the window and its embedded server share, as `python main.py` runs them;
    stopped after every window is closed."""
    loop = WindowLoop()
    yield loop
    loop.stop()


@pytest.fixture
def embedded(storage, window_loop):
    server = EmbeddedServer(ServerConfig(storage_dir=storage), window_loop.loop)
    yield server
    server.stop()


@pytest.fixture
def open_window(qtbot, window_loop):
    """Opens windows that the test closes or that are closed at its end."""
    windows = []

    def open_(address: str, server=None) -> MainWindow:
        window = MainWindow(address, server, loop=window_loop)
        window.confirm_close_during_upload = lambda: True  # the test's answer to the question
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield open_
    for window in windows:
        window.close()
        assert not window.is_uploading()


@pytest.fixture
def window(open_window, embedded) -> MainWindow:
    return open_window(embedded.address, embedded)


def choose(window: MainWindow, path: Path) -> None:
    """Picks a file the way a user does, with the dialog answered by the test."""
    window.ask_for_files = lambda: [str(path)]
    window.choose_button.click()


def table_rows(window: MainWindow) -> list[tuple[str, str]]:
    """The totals table's rows as the view shows them, top to bottom."""
    model = window.job_panel.table.model()
    return [(model.index(row, 0).data(), model.index(row, 1).data())
            for row in range(model.rowCount())]
