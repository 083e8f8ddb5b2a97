"""The window's File and Help menus, with the keys that do the same listed beside each command."""

from __future__ import annotations

import html

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox

from desktop_app import VERSION


def build_menus(window: QMainWindow) -> None:
    """File (open, process, cancel, quit) and Help (About) on the window's menu bar."""
    file_menu = window.menuBar().addMenu("&File")
    open_action = file_menu.addAction("&Open a sales file…", window.choose_file)
    open_action.setShortcut(QKeySequence.StandardKey.Open)
    file_menu.addAction("&Process the chosen file\tEnter", window.start_upload)
    file_menu.addAction("&Cancel processing\tEsc", window.cancel_upload)
    file_menu.addSeparator()
    quit_action = file_menu.addAction("&Quit", window.close)
    quit_action.setShortcut(QKeySequence.StandardKey.Quit)
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction("&About Sales CSV Processor", lambda: _show_about(window))


def _show_about(window: QMainWindow) -> None:
    QMessageBox.about(window, "About Sales CSV Processor",
                      f"<b>Sales CSV Processor {VERSION}</b><br><br>Totals of sales per "
                      "department from a sales CSV file.<br><br>"
                      f"{html.escape(window.server_label.toolTip())}")
