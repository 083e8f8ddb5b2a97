"""Writes a totals table as a CSV file or an Excel workbook, whole or not at all."""

from __future__ import annotations

import csv
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy

from reports.table import TotalsTable

# A workbook sheet holds 1,048,576 rows: the titles, the departments and the Total row.
EXCEL_MAX_DEPARTMENTS = 1_048_576 - 2
_EXCEL_CELL_CHARACTERS = 32_767
_TOP_CHARTED = 10
_ROWS_AT_A_TIME = 20_000
# Written on a thread while the window runs, the rows otherwise held the interpreter for up to
# half a second at a time (measured in tests/test_window_files.py, 200,000 rows): a pause this
# often hands it over.
_ROWS_BETWEEN_PAUSES = 500
# A name a spreadsheet would run as a formula gets a leading quote; so does a name that starts
# with a quote already, so that no two names are written alike (`'=a` and `=a` are `''=a` and
# `'=a`: a reader drops one leading quote to get the name back). The server's output file
# (server/departments.py) and Save as follow this one rule.
FORMULA_START = r"^[=+\-@\t\r']"
_FORMULA = re.compile(FORMULA_START)
_DEPARTMENT = "Department Name"
_TOTAL = "Total Number of Sales"


class CannotSave(Exception):
    """The table cannot be saved in that form; the message says why in a sentence."""


def save_table(table: TotalsTable, path: Path, order: Sequence[int] | None = None) -> None:
    """Writes table to path: an Excel workbook for `.xlsx`, else CSV. Rows in `order` (row
    numbers of the table; default its own, by name). OSError: the folder cannot be written;
    CannotSave: too many rows for a workbook."""
    path = Path(path)
    rows = numpy.arange(len(table)) if order is None else numpy.asarray(order)
    excel = path.suffix.lower() == ".xlsx"
    if excel and len(table) > EXCEL_MAX_DEPARTMENTS:
        raise CannotSave(f"An Excel sheet holds at most {EXCEL_MAX_DEPARTMENTS:,} departments "
                         f"and these totals have {len(table):,}. Save them as CSV instead.")
    handle, temporary = tempfile.mkstemp(prefix=".saving-", suffix=path.suffix,
                                         dir=path.parent)
    os.close(handle)
    try:
        (_write_workbook if excel else _write_csv)(table, Path(temporary), rows)
        os.chmod(temporary, 0o666 & ~_umask())  # as any file the user saves, not private
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _umask() -> int:
    """This process's umask, read without setting it (setting it, even for a moment, would
    change the files other threads create meanwhile); 022 where it cannot be read."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def column_titles(table: TotalsTable) -> list[str]:
    """Department Name, one column per file when there are several, Total Number of Sales."""
    files = list(table.files) if len(table.files) > 1 else []
    return [_DEPARTMENT, *files, _TOTAL]


def _cells(table: TotalsTable, rows: numpy.ndarray):
    """(name, [per-file values], total) for each row, values as Python integers."""
    totals = table.totals
    several = len(table.files) > 1
    for start in range(0, len(rows), _ROWS_AT_A_TIME):
        # A slice at a time: one call over a million rows would hold the interpreter (and
        # the window waiting on it) for a noticeable moment.
        part = rows[start:start + _ROWS_AT_A_TIME]
        part_totals = numpy.asarray(totals)[part].tolist()
        part_values = table.cells(part) if several else None
        for offset, row in enumerate(part.tolist()):
            if offset % _ROWS_BETWEEN_PAUSES == 0:
                time.sleep(0)  # lets a waiting thread (the window) run: see _ROWS_BETWEEN_PAUSES
            yield (table.names[row], part_values[offset] if several else [],
                   int(part_totals[offset]))


def _write_csv(table: TotalsTable, path: Path, rows: numpy.ndarray) -> None:
    # With a byte-order mark: Excel then reads it as UTF-8 ("Café", not "CafÃ©").
    with open(path, "w", newline="", encoding="utf-8-sig") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(column_titles(table))
        for name, values, total in _cells(table, rows):
            writer.writerow([f"'{name}" if _FORMULA.match(name) else name, *values, total])


def _write_workbook(table: TotalsTable, path: Path, rows: numpy.ndarray) -> None:
    import xlsxwriter  # only when a workbook is asked for

    workbook = xlsxwriter.Workbook(str(path), {"constant_memory": True,
                                               "strings_to_formulas": False,
                                               "strings_to_numbers": False,
                                               "strings_to_urls": False})
    bold = workbook.add_format({"bold": True})
    number = workbook.add_format({"num_format": "#,##0"})
    bold_number = workbook.add_format({"bold": True, "num_format": "#,##0", "top": 1})
    bold_label = workbook.add_format({"bold": True, "top": 1})
    titles = column_titles(table)
    sheet = workbook.add_worksheet("Totals")
    sheet.freeze_panes(1, 1)
    sheet.set_column(0, 0, _name_width(table))
    sheet.set_column(1, len(titles) - 1, 16, number)
    sheet.write_row(0, 0, titles, bold)
    last = len(rows)
    for count, (name, values, total) in enumerate(_cells(table, rows), 1):
        sheet.write_string(count, 0, _fits_a_cell(name))
        for column, value in enumerate([*values, total], 1):
            if value is not None:  # a file without the department: a blank cell
                sheet.write_number(count, column, value)
    sheet.write_string(last + 1, 0, "Total", bold_label)
    sums = [*table.values.sum(axis=0, dtype=object).tolist(), table.grand_total] \
        if len(table.files) > 1 else [table.grand_total]
    for column, value in enumerate(sums, 1):
        cells = xlsxwriter.utility.xl_range(1, column, max(last, 1), column)
        sheet.write_formula(last + 1, column, f"=SUM({cells})", bold_number, int(value))
    sheet.autofilter(0, 0, max(last, 1), len(titles) - 1)
    _write_top_sheet(workbook, table, bold, number)
    workbook.close()


def _write_top_sheet(workbook, table: TotalsTable, bold, number) -> None:
    """The biggest departments by total, and a bar chart of them."""
    totals = numpy.asarray(table.totals, dtype=numpy.float64)
    top = numpy.argsort(-totals, kind="stable")[:_TOP_CHARTED]
    sheet = workbook.add_worksheet("Top departments")
    sheet.set_column(0, 0, _name_width(table, top))
    sheet.set_column(1, 1, 16, number)
    sheet.write_row(0, 0, [_DEPARTMENT, _TOTAL], bold)
    totals_exact = table.totals
    for count, row in enumerate(top.tolist(), 1):
        sheet.write_string(count, 0, _fits_a_cell(table.names[row]))
        sheet.write_number(count, 1, int(totals_exact[row]))
    if not len(top):
        return
    chart = workbook.add_chart({"type": "bar"})
    chart.add_series({"name": "Total sales",
                      "categories": ["Top departments", 1, 0, len(top), 0],
                      "values": ["Top departments", 1, 1, len(top), 1],
                      "fill": {"color": "#4a7fc1"}})
    chart.set_title({"name": f"Top {len(top)} departments by total sales"})
    chart.set_legend({"none": True})
    chart.set_y_axis({"reverse": True})  # the biggest at the top, as in the table
    chart.set_x_axis({"num_format": "#,##0"})
    chart.set_size({"width": 720, "height": 40 * len(top) + 120})
    sheet.insert_chart("D2", chart)


def _name_width(table: TotalsTable, rows=None) -> int:
    """A department column as wide as its names, within reason (in characters)."""
    sample = table.names[:2000] if rows is None else [table.names[r] for r in rows]
    return min(60, max([16, *(len(name) + 2 for name in sample)]))


def _fits_a_cell(name: str) -> str:
    """A workbook cell holds 32,767 characters; a longer name is cut in the middle."""
    if len(name) <= _EXCEL_CELL_CHARACTERS:
        return name
    half = (_EXCEL_CELL_CHARACTERS - 1) // 2
    return f"{name[:half]}…{name[-half:]}"
