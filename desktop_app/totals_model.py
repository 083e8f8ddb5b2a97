"""The departments and their totals, as a table the view sorts by name or by number.

It sorts itself, with numpy, instead of through a sort proxy: a proxy asks data() for each of a
million rows' sort key, in Python, on the GUI thread (15-35 s frozen with 200,000 departments).
The rows arrive in output order, which is name order, so sorting by name is that order or its
reverse, and sorting by number one argsort of the totals (milliseconds).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy
from PySide6.QtCore import Qt

from desktop_app.rows_model import Index, RowsModel

COLUMN_DEPARTMENT = 0
COLUMN_TOTAL = 1
COLUMN_SHARE = 2
HEADERS = ("Department", "Total sales", "Share of all sales")
# The bar delegate reads the department's share of all sales, -1.0 to 1.0 (None: no bar, when
# the sales come to nothing or less): a bar as long as the percentage it shows.
SHARE_ROLE = Qt.ItemDataRole.UserRole + 1  # (UserRole was the sort proxy's key, now unused)


class TotalsModel(RowsModel):
    """Rows of (department, total) in name order, shown in the order last asked for by sort();
    the share column feeds an in-cell bar."""

    HEADERS = HEADERS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._names: list[str] = []
        self._totals = numpy.zeros(0, numpy.int64)
        self._order = numpy.zeros(0, numpy.intp)  # shown row -> row in name order
        self._by_total: numpy.ndarray | None = None  # the totals' argsort, made once per rows
        self._sum = 0
        self._sorted_by = (COLUMN_DEPARTMENT, Qt.SortOrder.AscendingOrder)

    @property
    def grand_total(self) -> int:
        """All departments' totals together."""
        return self._sum

    def set_rows(self, rows: Sequence[tuple[str, int]]) -> None:
        """Replaces every row (given in name order), kept in the order last sorted by."""
        self.beginResetModel()
        self._names = [name for name, _ in rows]
        self._totals = numpy.fromiter((total for _, total in rows), numpy.int64, len(rows))
        self._rows = self._names  # rowCount()
        self._sum = int(self._totals.sum(dtype=numpy.int64)) if len(rows) else 0
        self._by_total = None
        self._order = self._ordered(*self._sorted_by)
        self.endResetModel()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """By name or by number, ascending or descending."""
        self.layoutAboutToBeChanged.emit()
        self._sorted_by = (column, order)
        self._order = self._ordered(column, order)
        self.layoutChanged.emit()

    def _ordered(self, column: int, order: Qt.SortOrder) -> numpy.ndarray:
        if column == COLUMN_DEPARTMENT:
            shown = numpy.arange(len(self._names))
        else:
            if self._by_total is None:
                self._by_total = numpy.argsort(self._totals, kind="stable")
            shown = self._by_total
        return shown[::-1] if order == Qt.SortOrder.DescendingOrder else shown

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = int(self._order[index.row()])
        name, total = self._names[row], int(self._totals[row])
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COLUMN_DEPARTMENT:
                return name
            if column == COLUMN_TOTAL:
                return f"{total:,}"
            if self._sum > 0:
                return f"{total / self._sum:.1%}"
            return ""
        if role == SHARE_ROLE and column == COLUMN_SHARE:
            return max(-1.0, min(1.0, total / self._sum)) if self._sum > 0 else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column != COLUMN_DEPARTMENT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{name}: {total:,}"
        return None
