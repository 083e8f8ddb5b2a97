"""Starts the desktop window: the QApplication, the embedded (or remote) server, the window."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app import ICON_PATH
from desktop_app.event_loop import WindowLoop
from desktop_app.main_window import MainWindow
from desktop_app.server_runner import EmbeddedServer
from desktop_app.single_instance import SingleInstance
from desktop_app.stall_meter import StallMeter
from server.app import ServerStartError
from server.memory import configure_process


APP_NAME = "Sales CSV Processor"
# How long a launch that finds the storage taken waits for that window to take its files.
_HAND_OVER_SECONDS = 10.0
log = logging.getLogger(__name__)


def window_storage(storage_dir: str | None) -> Path:
    """Where the window's embedded server keeps its history and files: the folder asked for
    (--storage-dir, STORAGE_DIR), else this user's application data folder, so that every
    launch finds the same history wherever it is started from."""
    if storage_dir:
        return Path(storage_dir)
    QApplication.instance() or QApplication(sys.argv[:1])
    QApplication.setApplicationName(APP_NAME)
    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))


def run_window(args: argparse.Namespace, server_config=None) -> int:
    """Shows the window until it is closed; returns the exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setWindowIcon(QIcon(str(ICON_PATH)))
    app.setDesktopFileName("sales-csv")  # the menu entry's icon on Wayland docks
    if server_config is not None:
        server_config = replace(server_config,
                                storage_dir=window_storage(getattr(args, "storage_dir", None)))
    instance = None
    if not args.server:  # one window per storage folder
        instance = SingleInstance(server_config.storage_dir)
        if instance.hand_over(args.files):
            return 0
    loop = WindowLoop()
    try:
        return _show_window(app, args, server_config, loop, instance)
    finally:
        loop.stop()


def _tell_start_failure(error: ServerStartError, storage: Path) -> None:
    """The dialog for a window that cannot start: what it means for the person at the screen,
    and the technical sentence (for whoever looks after the computer) under Show Details."""
    box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, f"{APP_NAME} could not start.")
    if error.storage_in_use:
        box.setInformativeText(
            f"Another program is using its folder {storage} (a Sales CSV server started with "
            "`serve`, perhaps). To work with that server, start the app with --server "
            "HOST:PORT.")
    else:
        box.setInformativeText(
            f"It cannot keep its history and results in {storage}. Ask whoever looks after "
            "this computer to let you write there, or to start the app with STORAGE_DIR set to "
            "a folder you can write.")
    box.setDetailedText(str(error))
    box.exec()


def _hand_over_soon(instance: SingleInstance, args: argparse.Namespace) -> bool:
    """Two launches at the same moment (a file manager opening several files) both find no
    window and start; the one that does not get the storage hands its files to the other,
    which is listening a moment later."""
    deadline = time.monotonic() + _HAND_OVER_SECONDS
    while time.monotonic() < deadline:
        if instance.hand_over(args.files):
            return True
        time.sleep(0.2)
    return False


def _show_window(app: QApplication, args: argparse.Namespace, server_config,
                 loop: WindowLoop, instance: SingleInstance | None) -> int:
    server = None
    address = args.server
    if not address:
        configure_process()  # the embedded server allocates as `serve` does
        try:
            server = EmbeddedServer(server_config, loop.loop)
        except ServerStartError as exc:
            if exc.storage_in_use and instance is not None and _hand_over_soon(instance, args):
                return 0  # another launch of the same moment got there first
            print(f"{APP_NAME} could not start: {exc}", file=sys.stderr)
            _tell_start_failure(exc, server_config.storage_dir)
            return 1
        address = server.address
    try:
        window = MainWindow(address, server, token=args.token, ca_cert=args.ca_cert, loop=loop)
    except OSError as exc:
        if server is not None:
            server.stop()
        QMessageBox.critical(None, "Sales CSV Processor", "Cannot read the CA certificate "
                             f"{args.ca_cert}: {exc.strerror or exc}.")
        return 1
    if args.files:  # as if handed over: a launch of the same moment adds its files to these
        window.bring_forward(args.files)
    if instance is not None:
        instance.files_received.connect(window.bring_forward)
        instance.listen()
    if log.isEnabledFor(logging.DEBUG):  # LOG_LEVEL=DEBUG: each freeze of the window
        StallMeter(log_over_ms=100, parent=window).start()
    window.show()
    return app.exec()
