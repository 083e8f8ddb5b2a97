"""The window with several files, Save as, deleting from the history, a second launch, and
a job big enough to freeze a careless window: the real window, its embedded server, the stub."""

import csv as csv_module
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import openpyxl
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication

from conftest import ROOT
from desktop_app.single_instance import SingleInstance
from desktop_app.stall_meter import StallMeter
from window_fixtures import SALES, TIMEOUT_MS

HEADER = b"Date,Department Name,Number of Sales\n"


def headers(window) -> list[str]:
    model = window.job_panel.table.model()
    return [model.headerData(column, Qt.Orientation.Horizontal)
            for column in range(model.columnCount())]


def process(qtbot, window, paths: list[Path], signal=None):
    window.ask_for_files = lambda: [str(path) for path in paths]
    window.choose_button.click()
    with qtbot.waitSignal(signal or window.upload_finished, timeout=TIMEOUT_MS) as done:
        window.start_button.click()
    return done.args[0]


def test_several_files_are_added_up_side_by_side(qtbot, window, tmp_path):
    march, april, broken = tmp_path / "march.csv", tmp_path / "april.csv", tmp_path / "x.csv"
    march.write_bytes(HEADER + b"d,Toys,5\nd,Food,2\n")
    april.write_bytes(HEADER + b"d,Food,10\nd,Garden,-1\nd,Food,oops\n")
    broken.write_bytes(b"Date,Amount\n1,2\n")
    values = []
    window.progress.valueChanged.connect(values.append)
    window.ask_for_files = lambda: [str(march), str(broken), str(april)]
    window.choose_button.click()
    assert "3 files" in window.file_label.text()
    with qtbot.waitSignal(window.files_combined, timeout=TIMEOUT_MS):
        window.start_button.click()
    assert values == sorted(values) and values[-1] == window.progress.maximum()
    assert headers(window) == ["Department", "march.csv", "april.csv", "Total sales",
                               "Share of all sales"]
    model = window.job_panel.table.model()
    shown = [[model.index(row, column).data() for column in range(4)]
             for row in range(model.rowCount())]
    # Biggest total first; a file without a department shows a blank, not 0.
    assert shown == [["Food", "2", "10", "12"], ["Toys", "5", "", "5"],
                     ["Garden", "", "-1", "-1"]]
    summary = window.job_panel.summary.text().replace("\u00a0", " ")
    assert "all departments together: 16 sales" in summary
    error = window.job_panel.error_banner
    assert error.isVisible() and "x.csv</b> was not processed: The header row" in error.text()
    rejected = window.job_panel.rejected_banner
    assert "april.csv</b>: 1 row left out (line 4:" in rejected.text()
    assert window.progress_label.text().startswith("Done: 2 files of 3")
    # Each file is a job of its own in the history.
    qtbot.waitUntil(lambda: window.history_panel.model.rowCount() == 3, timeout=TIMEOUT_MS)


def test_a_dropped_folder_stands_for_its_csv_files(window, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ("b.csv", "a.CSV", "notes.pdf"):
        (folder / name).write_bytes(SALES)
    window.select_files([folder])
    assert "2 files" in window.file_label.text() and "a.CSV, b.csv" in window.file_label.text()


def test_save_as_excel_and_csv(qtbot, window, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    march = folder / "march_sales.csv"
    march.write_bytes(SALES + b"2024-01-06,=HYPERLINK(1),3\n")
    process(qtbot, window, [march])
    qtbot.waitUntil(lambda: window.save_action.isEnabled(), timeout=TIMEOUT_MS)
    assert window.save_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Save)
    suggested = []
    target = tmp_path / "kept"
    window.ask_where_to_save = lambda path: suggested.append(path) or str(target)
    with qtbot.waitSignal(window.table_saved, timeout=TIMEOUT_MS) as saved:
        window.save_action.trigger()
    assert suggested == [folder / "march_sales - totals.xlsx"]
    assert saved.args == [str(tmp_path / "kept.xlsx")]  # no suffix typed: a workbook
    book = openpyxl.load_workbook(tmp_path / "kept.xlsx")
    rows = [[cell.value for cell in row] for row in book["Totals"].iter_rows()]
    # As the table shows them (biggest first), numbers as numbers, a Total row.
    assert rows == [["Department Name", "Total Number of Sales"], ["Electronics", 1200],
                    ["Toys", 30], ["Clothing", 12], ["=HYPERLINK(1)", 3],
                    ["Total", "=SUM(B2:B5)"]]
    top = [[cell.value for cell in row] for row in book["Top departments"].iter_rows()]
    assert top[1] == ["Electronics", 1200]
    assert any(name.startswith("xl/charts/chart") for name in
               zipfile.ZipFile(tmp_path / "kept.xlsx").namelist())

    window.job_panel.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    window.ask_where_to_save = lambda path: str(tmp_path / "kept.csv")
    with qtbot.waitSignal(window.table_saved, timeout=TIMEOUT_MS):
        window.save_action.trigger()
    assert (tmp_path / "kept.csv").read_bytes().startswith(b"\xef\xbb\xbfDepartment Name,")
    assert (tmp_path / "kept.csv").stat().st_mode & 0o044  # others may read it, as any save
    with open(tmp_path / "kept.csv", newline="", encoding="utf-8-sig") as saved_csv:
        assert list(csv_module.reader(saved_csv)) == [
            ["Department Name", "Total Number of Sales"], ["'=HYPERLINK(1)", "3"],
            ["Clothing", "12"], ["Electronics", "1200"], ["Toys", "30"]]
    # Open file now opens the saved file, and says so when nothing on this computer can.
    opened = []
    window.open_url = lambda url: opened.append(url.toLocalFile()) or False
    window.job_panel.open_button.click()
    assert opened == [str(tmp_path / "kept.csv")]
    assert window.statusBar().currentMessage() == (
        f"No program on this computer opens CSV files. The file is in {tmp_path}.")


def test_saving_where_it_cannot_be_written_is_a_sentence(qtbot, window, tmp_path, monkeypatch):
    process(qtbot, window, [tmp_path / "s.csv"] if (tmp_path / "s.csv").write_bytes(SALES)
            else [])
    qtbot.waitUntil(lambda: window.save_action.isEnabled(), timeout=TIMEOUT_MS)
    told = []
    monkeypatch.setattr("desktop_app.main_window.QMessageBox.warning",
                        lambda parent, title, text: told.append(text))
    window.ask_where_to_save = lambda path: str(tmp_path / "missing" / "t.xlsx")
    window.save_action.trigger()
    qtbot.waitUntil(lambda: bool(told), timeout=TIMEOUT_MS)
    assert told == [f"Cannot write t.xlsx in {tmp_path / 'missing'}: No such file or "
                    "directory."]


def test_deleting_a_job_asks_first_and_removes_its_files(qtbot, window, tmp_path):
    csv = tmp_path / "old.csv"
    csv.write_bytes(SALES)
    job = process(qtbot, window, [csv])
    history = window.history_panel
    # The job just processed is the one selected in the history.
    qtbot.waitUntil(lambda: history.delete_button.isEnabled(), timeout=TIMEOUT_MS)
    asked = []
    window.confirm_delete = lambda asked_job: asked.append(asked_job.filename) or False
    history.delete_button.click()
    assert asked == ["old.csv"] and Path(job.output_path).exists()
    window.confirm_delete = lambda asked_job: True
    window.activateWindow()
    history.table.setFocus()
    qtbot.waitUntil(lambda: window.focusWidget() is history.table, timeout=TIMEOUT_MS)
    qtbot.keyClick(history.table, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: history.model.rowCount() == 0, timeout=TIMEOUT_MS)
    assert window.statusBar().currentMessage() == "Deleted old.csv from the history."
    assert not Path(job.output_path).exists() and not Path(job.rejected_path).exists()
    assert window.job_panel.model.rowCount() == 0 and not window.save_action.isEnabled()


def test_a_second_launch_hands_its_file_to_the_first_window(qtbot, window, storage, tmp_path):
    instance = SingleInstance(storage)
    instance.files_received.connect(window.bring_forward)
    instance.listen()
    (tmp_path / "later.csv").write_bytes(SALES)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    second = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "later.csv", "--storage-dir", str(storage)],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=TIMEOUT_MS)
    finally:
        second.kill()
    assert second.returncode == 0, second.stderr.read()
    qtbot.waitUntil(lambda: "later.csv" in window.file_label.text(), timeout=TIMEOUT_MS)
    assert str(tmp_path) in window.file_label.text()  # the second launch's folder


def test_launches_of_the_same_moment_choose_their_files_together(window, tmp_path):
    """A file manager opening three files starts the app three times at once: the files
    handed over within moments of each other are chosen together, not one instead of another."""
    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / name).write_bytes(SALES)
        window.bring_forward([str(tmp_path / name)])
    assert "3 files" in window.file_label.text()
    assert "a.csv, b.csv, c.csv" in window.file_label.text()


def test_200000_departments_never_freeze_the_window(qtbot, window, tmp_path):
    """Receiving, loading, sorting by every column, choosing the job in the history again and
    saving: the event loop never stalls for long (measured here: tens of milliseconds)."""
    many = tmp_path / "many.csv"
    with open(many, "wb") as out:
        out.write(HEADER)
        out.writelines(f"d,Department {n:06d},{n % 997 - 3}\n".encode()
                       for n in range(200_000))
    small = tmp_path / "small.csv"
    small.write_bytes(SALES)
    process(qtbot, window, [small])
    meter = StallMeter(log_over_ms=100)
    meter.start()
    window.ask_for_files = lambda: [str(many)]
    window.choose_button.click()
    with qtbot.waitSignal(window.departments_loaded, timeout=TIMEOUT_MS) as loaded:
        window.start_button.click()
    many_job = loaded.args[0]
    assert window.job_panel.model.rowCount() == 200_000
    table = window.job_panel.table
    for column in (0, 1, 2):
        for order in (Qt.SortOrder.AscendingOrder, Qt.SortOrder.DescendingOrder):
            table.sortByColumn(column, order)
            table.viewport().repaint()  # painted there and then: its time is a stall too
            QApplication.processEvents()  # the meter's tick that was due runs now
    history = window.history_panel
    qtbot.waitUntil(lambda: history.model.rowCount() == 2, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.job_shown, timeout=TIMEOUT_MS):
        history.table.selectRow(1)  # the small file
    with qtbot.waitSignal(window.departments_loaded, timeout=TIMEOUT_MS,
                          check_params_cb=lambda job_id: job_id == many_job):
        history.table.selectRow(0)  # the many departments again
    window.ask_where_to_save = lambda path: str(tmp_path / "many totals.csv")
    with qtbot.waitSignal(window.table_saved, timeout=TIMEOUT_MS):
        window.save_action.trigger()
    longest = meter.stop()
    assert (tmp_path / "many totals.csv").stat().st_size > 200_000 * 10
    # The window's goal is 100 ms (bench/run.py measures it with 1,000,000 departments);
    # a loaded test machine gets some room.
    assert longest < 250, f"the window stalled for {longest:.0f} ms"
