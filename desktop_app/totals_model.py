"""The departments and their totals, as a table the view can sort by name or by number."""

from __future__ import annotations

from typing import Any, Sequence

from PySide6.QtCore import Qt

from desktop_app.rows_model import Index, RowsModel

COLUMN_DEPARTMENT = 0
COLUMN_TOTAL = 1
COLUMN_SHARE = 2
HEADERS = ("Department", "Total sales", "Share of all sales")
SORT_ROLE = Qt.ItemDataRole.UserRole
# The bar delegate reads the department's share of all sales, -1.0 to 1.0 (None: no bar, when
# the sales come to nothing or less): a bar as long as the percentage it shows.
SHARE_ROLE = Qt.ItemDataRole.UserRole + 1


class TotalsModel(RowsModel):
    """Rows of (department, total); the share column feeds an in-cell bar."""

    HEADERS = HEADERS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._sum = 0

    @property
    def grand_total(self) -> int:
        """All departments' totals together."""
        return self._sum

    def set_rows(self, rows: Sequence[tuple[str, int]]) -> None:
        """Replaces every row."""
        self.beginResetModel()
        self._rows = list(rows)
        self._sum = sum(total for _, total in self._rows)
        self.endResetModel()

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        name, total = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == COLUMN_DEPARTMENT:
                return name
            if column == COLUMN_TOTAL:
                return f"{total:,}"
            if self._sum > 0:
                return f"{total / self._sum:.1%}"
            return ""
        if role == SORT_ROLE:
            return name.casefold() if column == COLUMN_DEPARTMENT else total
        if role == SHARE_ROLE and column == COLUMN_SHARE:
            return max(-1.0, min(1.0, total / self._sum)) if self._sum > 0 else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column != COLUMN_DEPARTMENT:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{name}: {total:,}"
        return None
