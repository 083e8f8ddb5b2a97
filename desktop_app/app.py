"""Starts the desktop window: the QApplication, the embedded (or remote) server, the window."""

from __future__ import annotations

import argparse
import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from desktop_app.main_window import MainWindow
from desktop_app.server_runner import EmbeddedServer


def run_window(args: argparse.Namespace, server_config=None) -> int:
    """Shows the window until it is closed; returns the exit code."""
    from server.job_store import StoreError

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Sales CSV Processor")
    server = None
    address = args.server
    if not address:
        try:
            server = EmbeddedServer(server_config)
        except (StoreError, RuntimeError) as exc:
            hint = ("\n\nTo work with a server that is already running, start the window with "
                    "--server HOST:PORT." if isinstance(exc, StoreError) else "")
            QMessageBox.critical(None, "Sales CSV Processor",
                                 f"The built-in server could not start.\n\n{exc}{hint}")
            return 1
        address = server.address
    try:
        window = MainWindow(address, server, token=args.token, ca_cert=args.ca_cert)
    except OSError as exc:
        QMessageBox.critical(None, "Sales CSV Processor", "Cannot read the CA certificate "
                             f"{args.ca_cert}: {exc.strerror or exc}.")
        return 1
    if args.file:
        window.select_file(args.file)
    window.show()
    return app.exec()
