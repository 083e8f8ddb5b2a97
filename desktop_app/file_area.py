"""The top of the window: the chosen files (a drop area while there are none), Process and
Cancel, and the progress of the upload."""

from __future__ import annotations

import html
import os
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout,
                               QWidget)

from desktop_app.job_panel import banner
from salesapi.client import readable_size
from wording.quantities import format_bytes, format_count, format_duration

NO_FILE = ("<b>Drop sales CSV files here</b>, or click “Choose files…” (Ctrl+O). Several files "
           "are added up side by side.")
_PROGRESS_STEPS = 1000
# Speed and time left are shown once this much time has passed, when they mean something.
_MEASURABLE_SECONDS = 0.5
_DROP_STYLE = ("QLabel {{ border: 2px dashed {colour}; border-radius: 6px; padding: 10px; "
               "color: #333; }}")
_CHOSEN_STYLE = "QLabel { padding: 2px; }"
_NAMES_LISTED = 4
_CSV_SUFFIXES = (".csv", ".txt", ".tsv")


class FileArea(QWidget):
    """Chooses files and shows how their upload goes; the window does the rest."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paths: list[Path] = []
        self.sizes: list[int] = []
        self._started = 0.0
        self.choose_button = QPushButton("Choose files…")
        self.choose_button.setAccessibleName("Choose sales CSV files")
        self.choose_button.setToolTip("Ctrl+O")
        self.file_label = QLabel()
        self.file_label.setAccessibleName("Chosen files")
        self.file_label.setWordWrap(True)
        self.file_label.setMinimumHeight(48)
        self.start_button = QPushButton("Process")
        self.start_button.setAccessibleName("Process the chosen files")
        self.start_button.setToolTip("Enter")
        self.start_button.setStyleSheet("QPushButton { font-weight: 600; padding: 4px 18px; }")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel processing")
        self.cancel_button.setToolTip("Esc")
        self.progress = QProgressBar()
        self.progress.setAccessibleName("Progress")
        self.progress.setRange(0, _PROGRESS_STEPS)
        self.progress.setValue(0)
        self.progress.hide()  # shown while files are sent, and full once they are done
        self.progress_label = QLabel("")
        self.progress_label.setAccessibleName("Progress details")
        self.file_message = banner("error")
        self.file_message.setAccessibleName("File message")

        row = QHBoxLayout()
        row.addWidget(self.choose_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.file_label, 1)
        row.addWidget(self.start_button, 0, Qt.AlignmentFlag.AlignTop)
        row.addWidget(self.cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.file_message)
        self._show_none()
        self.set_busy(False)

    # -- choosing ------------------------------------------------------------------------------

    def select(self, chosen: list[str | os.PathLike]) -> bool:
        """Makes the files (a folder: the CSV files in it) the ones to process, or says why
        they cannot be; False when nothing usable was chosen."""
        paths: list[Path] = []
        problems: list[str] = []
        for item in chosen:
            path = Path(os.path.abspath(os.path.expanduser(item)))  # shows the real folder
            if path.is_dir():
                found = sorted(p for p in path.iterdir()
                               if p.suffix.lower() in _CSV_SUFFIXES and p.is_file())
                if not found:
                    problems.append(f"The folder {path.name} holds no CSV files.")
                paths.extend(found)
            else:
                paths.append(path)
        sizes = []
        for path in list(paths):
            try:
                sizes.append(readable_size(path))
            except OSError as exc:
                problems.append(f"Cannot read {path.name}: {exc.strerror or exc}.")
                paths.remove(path)
        self.show_message(" ".join(problems))
        if not paths:
            self.paths, self.sizes = [], []
            self._show_none()
            return False
        self.paths, self.sizes = paths, sizes
        self._show_chosen()
        self.show_outcome("Ready. Press Process (or Enter) to start.", False)
        return True

    def _show_none(self) -> None:
        self.file_label.setStyleSheet(_DROP_STYLE.format(colour="#8aa9c9"))
        self.file_label.setText(NO_FILE)
        self.file_label.setToolTip("")

    def show_drop_hover(self, hovering: bool) -> None:
        """While files are dragged over the window, the drop area says it will take them."""
        if hovering:
            self.file_label.setStyleSheet(_DROP_STYLE.format(colour="#1f6fb2")
                                          + "QLabel { background: #e8f1fb; }")
        elif self.paths:
            self.file_label.setStyleSheet(_CHOSEN_STYLE)
        else:
            self._show_none()

    def _show_chosen(self) -> None:
        self.file_label.setStyleSheet(_CHOSEN_STYLE)
        size = format_bytes(sum(self.sizes))
        if len(self.paths) == 1:
            path = self.paths[0]
            self.file_label.setText(
                f"<b>{html.escape(path.name, quote=False)}</b> — {size}<br><span "
                f"style='color:#666'>{html.escape(str(path.parent), quote=False)}</span>")
            self.file_label.setToolTip(str(path))
            return
        names = ", ".join(html.escape(path.name, quote=False)
                          for path in self.paths[:_NAMES_LISTED])
        more = len(self.paths) - _NAMES_LISTED
        self.file_label.setText(
            f"<b>{format_count(len(self.paths), 'file')}</b> — {size} in all<br><span "
            f"style='color:#666'>{names}{f' and {more} more' if more > 0 else ''}</span>")
        self.file_label.setToolTip("\n".join(str(path) for path in self.paths))

    def show_message(self, message: str) -> None:
        self.file_message.setText(message)
        self.file_message.setVisible(bool(message))

    def set_busy(self, busy: bool) -> None:
        self.choose_button.setEnabled(not busy)
        self.start_button.setEnabled(not busy and bool(self.paths))
        self.cancel_button.setEnabled(busy)

    # -- progress ------------------------------------------------------------------------------

    def started(self) -> None:
        self._started = time.monotonic()
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.show()
        self.progress_label.setText("Starting…")

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def show_progress(self, sent: int, total: int, current: str = "") -> None:
        self.progress.setValue(_PROGRESS_STEPS if total == 0 else sent * _PROGRESS_STEPS // total)
        elapsed = self.elapsed()
        text = f"{format_bytes(sent)} of {format_bytes(total)} sent"
        if current:
            text = f"{current} · {text}"
        if elapsed >= _MEASURABLE_SECONDS and sent > 0:
            speed = sent / elapsed
            text += f" · {format_bytes(speed)}/s"
            if sent < total:
                text += f" · about {format_duration((total - sent) / speed)} left"
        self.progress_label.setText(text)

    def show_outcome(self, text: str, full: bool) -> None:
        """The strip's last word on an upload; a full bar only when it succeeded (an empty one
        keeps its place, without text, so that nothing below jumps)."""
        self.progress.setValue(_PROGRESS_STEPS if full else 0)
        self.progress.setTextVisible(full)
        self.progress_label.setText(text)
