"""Totals tables as people keep them: one file's or several files' side by side, saved as CSV or
as an Excel workbook. Shared by the window's Save as and `python main.py upload --save`."""
