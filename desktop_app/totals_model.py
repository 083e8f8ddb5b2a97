"""The departments and their totals, as a table the view sorts by any column.

It sorts itself, with numpy, instead of through a sort proxy: a proxy asks data() for each of a
million rows' sort key, in Python, on the GUI thread (15-35 s frozen with 200,000 departments).
The rows arrive in output order, which is name order, so sorting by name is that order or its
reverse, and sorting by a number one argsort of that column (milliseconds).

Columns: Department, one per file when several files are combined, Total sales, Share.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy
from PySide6.QtCore import QModelIndex, Qt

from desktop_app.rows_model import Index, RowsModel
from reports.table import TotalsTable

COLUMN_DEPARTMENT = 0
# The bar delegate reads the department's share of all sales, -1.0 to 1.0 (None: no bar, when
# the sales come to nothing or less, or in other columns): a bar as long as the percentage.
SHARE_ROLE = Qt.ItemDataRole.UserRole + 1


class TotalsModel(RowsModel):
    """A TotalsTable, shown in the order last asked for by sort(); the share column feeds an
    in-cell bar."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.table = TotalsTable.of_file("", [])
        self._headers: tuple[str, ...] = ("Department", "Total sales", "Share of all sales")
        self._totals: numpy.ndarray = numpy.zeros(0, numpy.int64)
        self._order = numpy.zeros(0, numpy.intp)  # shown row -> table row (name order)
        self._sum = 0
        self._sorted_by = (COLUMN_DEPARTMENT, Qt.SortOrder.AscendingOrder)

    @property
    def grand_total(self) -> int:
        """All departments' totals together."""
        return self._sum

    @property
    def total_column(self) -> int:
        return len(self._headers) - 2

    @property
    def share_column(self) -> int:
        return len(self._headers) - 1

    @property
    def sorted_by(self) -> tuple[int, Qt.SortOrder]:
        """The column and order the rows are shown in."""
        return self._sorted_by

    def shown_order(self) -> numpy.ndarray:
        """The table's row numbers, top to bottom as shown."""
        return self._order

    def set_rows(self, rows: Sequence[tuple[str, int]]) -> None:
        """One file's (department, total) rows, in name order."""
        self.set_table(TotalsTable.of_file("Total sales", rows))

    def set_table(self, table: TotalsTable) -> None:
        """Replaces every row, kept in the order last sorted by."""
        files = table.files if len(table.files) > 1 else ()
        headers = ("Department", *files, "Total sales", "Share of all sales")
        if headers != self._headers:
            self._sorted_by = (len(headers) - 2 if self._sorted_by[0] else 0, self._sorted_by[1])
        self.beginResetModel()
        self._headers = headers
        self.table = table
        self._rows = table.names  # rowCount()
        self._totals = numpy.asarray(table.totals)
        self._sum = table.grand_total
        self._order = self._ordered(*self._sorted_by)
        self.endResetModel()

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._headers)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role in (
                Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return self._headers[section]  # the tooltip: a file's name in full
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """By name or by a number, ascending or descending."""
        self.layoutAboutToBeChanged.emit()
        self._sorted_by = (column, order)
        self._order = self._ordered(column, order)
        self.layoutChanged.emit()

    def _has(self, row: int, file: int) -> bool:
        present = self.table.present
        return present is None or bool(present[row, file])

    def widest_texts(self, column: int) -> list[str]:
        """The column's longest texts: its smallest and largest numbers, written as shown."""
        values = self._column_values(column)
        if not len(values):
            return []
        return [f"{int(values.min()):,}", f"{int(values.max()):,}"]

    def _column_values(self, column: int) -> numpy.ndarray:
        if column >= self.total_column:  # the total and its share sort alike
            return self._totals
        return self.table.values[:, column - 1]

    def _ordered(self, column: int, order: Qt.SortOrder) -> numpy.ndarray:
        if column == COLUMN_DEPARTMENT or column >= len(self._headers):
            shown = numpy.arange(len(self.table))
        else:
            shown = self.table.order_by(None if column >= self.total_column else column - 1)
        return shown[::-1] if order == Qt.SortOrder.DescendingOrder else shown

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = int(self._order[index.row()])
        column = index.column()
        name, total = self.table.names[row], int(self._totals[row])
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COLUMN_DEPARTMENT:
                return name
            if column == self.share_column:
                return f"{total / self._sum:.1%}" if self._sum > 0 else ""
            if column < self.total_column and not self._has(row, column - 1):
                return ""  # this file has no such department
            return f"{int(self._column_values(column)[row]):,}"
        if role == SHARE_ROLE and column == self.share_column:
            return max(-1.0, min(1.0, total / self._sum)) if self._sum > 0 else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column != COLUMN_DEPARTMENT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{name}: {total:,}"
        return None
