"""Draws a department's share of all sales as a bar as long as its percentage."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRectF, Qt
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_app.totals_model import SHARE_ROLE

_POSITIVE = QColor("#4a7fc1")
_NEGATIVE = QColor("#c8553d")


class ShareBarDelegate(QStyledItemDelegate):
    """A horizontal bar behind the cell's text; returns (negative shares) are drawn in red."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        share = index.data(SHARE_ROLE)
        if share is None:
            super().paint(painter, option, index)
            return
        style = option.widget.style() if option.widget else None
        if style is not None and option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        rect = QRectF(option.rect).adjusted(4, 5, -4, -5)
        text_width = option.fontMetrics.horizontalAdvance("100.0%") + 8
        bar_space = max(0.0, rect.width() - text_width)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(_NEGATIVE if share < 0 else _POSITIVE)
        painter.drawRoundedRect(QRectF(rect.left(), rect.top(), bar_space * abs(share),
                                       rect.height()), 2, 2)
        painter.restore()
        text = index.data(Qt.ItemDataRole.DisplayRole) or ""
        painter.drawText(QRectF(rect.left() + bar_space, option.rect.top(), text_width,
                                option.rect.height()),
                         int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), text)
