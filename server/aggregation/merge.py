"""Partial sums: kept per block, grouped (in two halves when large), merged into the totals."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy
import pyarrow
import pyarrow.compute

from server.aggregation.encoding import ENCODING_WINDOWS_1252, decode_text, decode_windows_1252
from server.aggregation.errors import InputError, too_many_departments
from server.aggregation.state import INT64_MAX, INT64_MIN
from server.aggregation.tuning import Tuning
from server.departments import Departments, value_offsets


def group(table: pyarrow.Table, split_rows: int) -> pyarrow.Table:
    """Sums v per k (binary keys); a table of split_rows or more in two halves at once."""
    # The halves are split by each key's last byte, so that equal keys stay together, and grouped
    # on two threads: two hash tables of half the size, and nothing to merge afterwards.
    if table.num_rows < split_rows:
        return _group_together(table)
    odd = _last_byte_odd(table.column("k"))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="group") as pool:
        other_half = pool.submit(lambda: _group_together(table.filter(odd)))
        even = _group_together(table.filter(pyarrow.compute.invert(odd)))
        return pyarrow.concat_tables([even, other_half.result()])


def _group_together(table: pyarrow.Table) -> pyarrow.Table:
    grouped = table.group_by("k", use_threads=False).aggregate([("v", "sum")])
    return pyarrow.table({"k": grouped.column("k"), "v": grouped.column("v_sum")})


def _last_byte_odd(keys: pyarrow.ChunkedArray) -> pyarrow.Array:
    """Per key: is its last byte odd (false for an empty key)."""
    parts = []
    for chunk in keys.chunks:
        offsets = value_offsets(chunk)
        data = chunk.buffers()[2]
        if data is None or len(data) == 0:
            parts.append(numpy.zeros(len(chunk), bool))
            continue
        last = numpy.frombuffer(data, numpy.uint8)[numpy.maximum(offsets[1:] - 1, 0)]
        parts.append((last & 1).astype(bool) & (offsets[1:] > offsets[:-1]))
    return pyarrow.array(numpy.concatenate(parts) if parts else numpy.zeros(0, bool))


class Partials:
    """The columnar path's sums: Arrow tables of (k: trimmed name bytes, v: sum), merged now and
    then; together they can never leave 64 bits (see fits)."""

    def __init__(self, tuning: Tuning, max_departments: int) -> None:
        self._tuning = tuning
        self._max_departments = max_departments
        self._tables: list[pyarrow.Table] = []
        self._rows = 0
        self.bound = 0  # the largest absolute sum the tables could hold
        self.departments = 0  # a lower bound, from grouped tables

    def fits(self, bound: int) -> bool:
        """True if sums that could grow by bound still cannot leave 64 bits."""
        return self.bound + bound <= INT64_MAX

    def add(self, table: pyarrow.Table, bound: int, grouped: bool) -> None:
        """Keeps a table of sums (grouped or not) within bound; merges all once they grow long."""
        if grouped:
            self.departments = max(self.departments, table.num_rows)
        self._tables.append(table)
        self._rows += table.num_rows
        self.bound += bound
        if self._rows > max(4 * self.departments, self._tuning.partial_rows):
            self.consolidate()

    def consolidate(self) -> None:
        """Merges the tables into one; raises LimitExceeded past the departments limit."""
        merged = group(pyarrow.concat_tables(self._tables), self._tuning.split_rows)
        self._tables = [merged]
        self._rows = self.departments = merged.num_rows
        if merged.num_rows > self._max_departments:
            raise too_many_departments(self._max_departments)

    def merged(self) -> pyarrow.Table | None:
        """All sums in one table, or None if there are none."""
        if not self._tables:
            return None
        if len(self._tables) > 1:
            self.consolidate()
        return self._tables[0]


def final_totals(partials: Partials, exact: dict[str, int], encoding: str,
                 split_rows: int) -> Departments:
    """Both paths' sums, decoded, in output order; raises InputError for a total beyond 64 bits."""
    # exact holds the exact path's sums by the Latin-1 view of the name; it may be added to.
    table = partials.merged()
    if table is not None and exact:
        if partials.fits(sum(abs(total) for total in exact.values())):
            table = group(pyarrow.concat_tables([table, pyarrow.table({
                "k": pyarrow.array([key.encode("latin-1") for key in exact], pyarrow.binary()),
                "v": pyarrow.array(list(exact.values()), pyarrow.int64())})]), split_rows)
        else:  # sums beyond 64 bits may still come back: add them up as Python integers
            for key, total in zip(table.column("k").to_pylist(), table.column("v").to_pylist()):
                name = key.decode("latin-1")
                exact[name] = exact.get(name, 0) + total
            table = None
    if table is not None:  # within 64 bits by construction
        keys = table.column("k")
        if encoding == ENCODING_WINDOWS_1252:
            names = pyarrow.array([decode_windows_1252(key) for key in keys.to_pylist()],
                                  pyarrow.string())
        else:
            names = pyarrow.compute.cast(keys, pyarrow.string())
        return Departments.in_output_order(names, table.column("v"))
    return _exact_totals(exact, encoding)


def _exact_totals(exact: dict[str, int], encoding: str) -> Departments:
    names, totals = [], []
    for key, total in exact.items():
        name = decode_text(key, encoding)
        if not INT64_MIN <= total <= INT64_MAX:
            raise InputError(f"The total for department \"{name}\" is {total}, which is too "
                             "large to store (it does not fit in 64 bits).")
        names.append(name)
        totals.append(total)
    return Departments.in_output_order(pyarrow.array(names, pyarrow.string()),
                                       pyarrow.array(totals, pyarrow.int64()))
