"""The window's File and Help menus, with the keys that do the same listed beside each command."""

from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMessageBox

from desktop_app import VERSION


def build_menus(window: QMainWindow) -> QAction:
    """File (open, process, cancel, save as, quit) and Help (About) on the window's menu bar;
    returns the Save as action (enabled while there are totals to save)."""
    file_menu = window.menuBar().addMenu("&File")
    open_action = file_menu.addAction("&Open sales files…", window.choose_file)
    open_action.setShortcut(QKeySequence.StandardKey.Open)
    file_menu.addAction("&Process the chosen files\tEnter", window.start_upload)
    window.cancel_action = file_menu.addAction("&Cancel processing\tEsc", window.cancel_upload)
    file_menu.addSeparator()
    save_action = file_menu.addAction("&Save the totals as…", window.save_as)
    save_action.setShortcut(QKeySequence.StandardKey.Save)
    file_menu.addSeparator()
    quit_action = file_menu.addAction("&Quit", window.close)
    quit_action.setShortcut(QKeySequence.StandardKey.Quit)
    help_menu = window.menuBar().addMenu("&Help")
    help_menu.addAction("&About Sales CSV Processor", lambda: _show_about(window))
    return save_action


def _show_about(window: QMainWindow) -> None:
    QMessageBox.about(window, "About Sales CSV Processor",
                      f"<b>Sales CSV Processor {VERSION}</b><br><br>Totals of sales per "
                      "department from sales CSV files.<br><br>"
                      + ("Files are processed on this computer; the history and results "
                         f"are kept in {html.escape(str(window.storage_folder))}."
                         if window.storage_folder is not None else
                         f"Files are processed by the server at {html.escape(window.address)}."))
