"""Sort arrows as spreadsheets draw them: up for A to Z and smallest first, down for the other
way (Qt's styles draw them the other way round)."""

from __future__ import annotations

from PySide6.QtWidgets import QProxyStyle, QStyle, QStyleOptionHeader

_FLIPPED = {QStyleOptionHeader.SortIndicator.SortUp: QStyleOptionHeader.SortIndicator.SortDown,
            QStyleOptionHeader.SortIndicator.SortDown: QStyleOptionHeader.SortIndicator.SortUp}


class SpreadsheetSortArrows(QProxyStyle):
    """The application's style, with a header's sort arrow turned over."""

    def drawPrimitive(self, element, option, painter, widget=None) -> None:
        if (element == QStyle.PrimitiveElement.PE_IndicatorHeaderArrow
                and isinstance(option, QStyleOptionHeader)
                and option.sortIndicator in _FLIPPED):
            option = QStyleOptionHeader(option)
            option.sortIndicator = _FLIPPED[option.sortIndicator]
        super().drawPrimitive(element, option, painter, widget)
