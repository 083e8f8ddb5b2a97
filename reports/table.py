"""A table of totals per department: one file's, or several files' side by side with their sum."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy

# Rows as the server sends them: (department, total) in output order.
Rows = Sequence[tuple[str, int]]


def output_order_key(name: str) -> tuple[bytes, bytes]:
    """The server's output order: by name case-insensitively, ties by exact name."""
    return name.lower().encode("utf-8", "surrogatepass"), name.encode("utf-8", "surrogatepass")


@dataclass(frozen=True, eq=False)
class TotalsTable:
    """names[i]'s totals are values[i], one column per file; rows in output order."""

    names: list[str]
    files: tuple[str, ...]
    values: numpy.ndarray  # int64, shape (len(names), len(files))
    # Which file has which department (a file without it shows a blank, not 0); None: all.
    present: numpy.ndarray | None = None
    _orders: dict = field(default_factory=dict, repr=False)  # column -> its argsort

    @classmethod
    def of_file(cls, file: str, rows: Rows) -> "TotalsTable":
        return cls.of_columns(file, [name for name, _ in rows],
                              numpy.fromiter((total for _, total in rows), numpy.int64,
                                             len(rows)))

    @classmethod
    def of_columns(cls, file: str, names: list[str], totals) -> "TotalsTable":
        """From a list of names and a sequence of totals (no tuple per department: a million
        tuples would keep Python's garbage collector busy for a tenth of a second at a time)."""
        values = numpy.asarray(totals, dtype=numpy.int64).reshape(-1, 1)
        return cls(names, (file,), values)

    @classmethod
    def combined(cls, files: Sequence[tuple[str, "TotalsTable"]]) -> "TotalsTable":
        """Several files' one-column tables side by side: every department of any file, 0
        where a file has none."""
        if len(files) == 1:
            file, table = files[0]
            return cls(table.names, (file,), table.values)
        row_of: dict[str, int] = {}
        for _, table in files:
            for name in table.names:
                row_of.setdefault(name, len(row_of))
        names = sorted(row_of, key=output_order_key)
        position = numpy.empty(len(names), numpy.intp)  # first-seen row -> row in name order
        position[numpy.fromiter((row_of[name] for name in names), numpy.intp, len(names))] = \
            numpy.arange(len(names))
        values = numpy.zeros((len(names), len(files)), numpy.int64)
        present = numpy.zeros((len(names), len(files)), bool)
        for column, (_, table) in enumerate(files):
            rows_at = position[numpy.fromiter((row_of[name] for name in table.names),
                                              numpy.intp, len(table))]
            values[rows_at, column] = table.values[:, 0]
            present[rows_at, column] = True
        return cls(names, distinct_titles(file for file, _ in files), values, present)

    def cells(self, rows: numpy.ndarray) -> list[list[int | None]]:
        """The per-file values of rows, None where a file does not have the department."""
        values = self.values[rows].tolist()
        if self.present is None:
            return values
        present = self.present[rows].tolist()
        return [[value if has else None for value, has in zip(row, flags)]
                for row, flags in zip(values, present)]

    def __len__(self) -> int:
        return len(self.names)

    @property
    def totals(self) -> list[int] | numpy.ndarray:
        """Each department's total over every file (Python integers if int64 would overflow)."""
        if self.values.shape[1] == 1:
            return self.values[:, 0]
        if len(self) and numpy.abs(self.values.astype(numpy.float64)).sum(axis=1).max() >= 2**62:
            return self.values.astype(object).sum(axis=1)
        return self.values.sum(axis=1)

    def order_by(self, column: int | None = None) -> numpy.ndarray:
        """Row numbers by a file's column (None: the total), smallest first; made once."""
        if column not in self._orders:
            values = self.totals if column is None else self.values[:, column]
            self._orders[column] = numpy.argsort(numpy.asarray(values), kind="stable")
        return self._orders[column]

    @property
    def grand_total(self) -> int:
        """Every department in every file together, exactly."""
        if not len(self):
            return 0
        if numpy.abs(self.values.astype(numpy.float64)).sum() < 2**62:
            return int(self.values.sum())
        return int(self.values.astype(object).sum())


def distinct_titles(names: Iterable[str]) -> tuple[str, ...]:
    """Column titles for files: their names, `sales.csv (2)` for a second file of that name."""
    titles: list[str] = []
    for name in names:
        title, count = name, 1
        while title in titles:
            count += 1
            title = f"{name} ({count})"
        titles.append(title)
    return tuple(titles)
