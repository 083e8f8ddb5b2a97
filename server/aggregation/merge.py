"""Partial sums: kept in parts by a hash of the name, each part merged on its own as it grows,
so that every hash table stays small and the count of departments is known as they arrive."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy
import pyarrow
import pyarrow.compute

from server.aggregation.encoding import ENCODING_WINDOWS_1252, decode_text, decode_windows_1252
from server.aggregation.errors import InputError, too_many_departments
from server.aggregation.state import INT64_MAX, INT64_MIN
from server.aggregation.tuning import Tuning
from server.departments import FIRST_BYTES, Departments, value_offsets, words_at

# Why parts: grouping a million distinct names at once builds a hash table far larger than the
# caches (measured: 0.51 s for 3.4M rows of 950,000 names, 0.19 s for the same rows in 16 parts
# of a sixteenth of the names each). Equal names always land in the same part, so the parts'
# sums never need merging with each other, and the parts can be grouped on two threads at once.
_MIX = [numpy.uint64(constant) for constant in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F,
                                                 0x165667B19E3779F9, 0x27D4EB2F165667C5)]


def group(table: pyarrow.Table) -> pyarrow.Table:
    """Sums v per k (binary keys)."""
    grouped = table.group_by("k", use_threads=False).aggregate([("v", "sum")])
    return pyarrow.table({"k": grouped.column("k"), "v": grouped.column("v_sum")})


def part_numbers(keys: pyarrow.Array, parts: int) -> numpy.ndarray:
    """For each binary key, its part in 0..parts-1 (parts <= 256): a hash of its length, its
    first, middle and last 8 bytes, and the sum of all its bytes (equal keys, equal parts;
    names that differ only inside, like `Store 000123 ...padding...`, still spread)."""
    offsets = value_offsets(keys).astype(numpy.int64)
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    known = FIRST_BYTES[numpy.minimum(lengths, 8)]
    first = words_at(keys, starts) & known
    middle = words_at(keys, numpy.maximum(starts + lengths // 2 - 4, starts)) & known
    last = words_at(keys, numpy.maximum(ends - 8, starts)) & known
    mixed = (first * _MIX[0] + middle * _MIX[1] + last * _MIX[2]
             + _byte_sums(keys, starts, lengths) * _MIX[3] + lengths.astype(numpy.uint64))
    return ((mixed >> numpy.uint64(32)) % numpy.uint64(parts)).astype(numpy.uint8)


def _byte_sums(keys: pyarrow.Array, starts: numpy.ndarray,
               lengths: numpy.ndarray) -> numpy.ndarray:
    """The sum of each key's bytes (uint64)."""
    sums = numpy.zeros(len(starts), numpy.uint64)
    data = keys.buffers()[2]
    filled = numpy.flatnonzero(lengths > 0)
    if data is None or not len(filled):
        return sums
    view = numpy.frombuffer(data, numpy.uint8)[:int(starts[-1] + lengths[-1])]
    # Keys lie back to back: each non-empty key's sum runs from its start to the next one's.
    sums[filled] = numpy.add.reduceat(view, starts[filled], dtype=numpy.uint64)
    return sums


def split(table: pyarrow.Table, parts: int) -> list[pyarrow.Table]:
    """The table's rows in parts by part_numbers() of k (an empty table for an empty part)."""
    if parts == 1:
        return [table]
    table = table.combine_chunks()
    numbers = part_numbers(table.column("k").chunk(0) if table.num_rows else
                           pyarrow.array([], pyarrow.binary()), parts)
    order = numpy.argsort(numbers, kind="stable")  # a radix sort, for bytes
    ordered = table.take(pyarrow.array(order))
    bounds = numpy.concatenate([[0], numpy.cumsum(numpy.bincount(numbers, minlength=parts))])
    return [ordered.slice(int(start), int(end - start))
            for start, end in zip(bounds[:-1], bounds[1:])]


class _Part:
    """One part's sums: a merged table (one row per name) and the tables added since."""

    def __init__(self) -> None:
        self.tables: list[pyarrow.Table] = []
        self.rows = 0  # in tables, merged one included
        self.departments = 0  # in the merged table

    def add(self, table: pyarrow.Table) -> None:
        if table.num_rows:
            self.tables.append(table)
            self.rows += table.num_rows

    def merge(self) -> None:
        if len(self.tables) > 1 or (self.tables and self.rows > self.departments):
            merged = group(pyarrow.concat_tables(self.tables))
            self.tables = [merged]
            self.rows = self.departments = merged.num_rows


class Partials:
    """The columnar path's sums: Arrow tables of (k: trimmed name bytes, v: sum) in parts, each
    merged as its new rows grow; together they can never leave
    64 bits (see fits). Raises LimitExceeded as soon as the merged parts hold more departments
    than the limit."""

    def __init__(self, tuning: Tuning, max_departments: int) -> None:
        self._parts = [_Part() for _ in range(tuning.parts)]
        self.max_departments = max_departments
        # Rows a part takes in between merges: at least the base, and at most the limit's
        # share, so that memory stays within what about twice the limit's departments need.
        share = max(256, max_departments // tuning.parts)
        self._base = min(tuning.partial_rows, share)
        self._most = max(self._base, share)
        # Once the merged departments and the rows not yet merged could pass the limit, all
        # parts are merged after this many more rows: a file beyond the limit is caught
        # within an eighth of the limit's rows. (A file within an eighth of the limit is
        # merged that often to the end: up to eight times the grouping, for those files only.)
        self._check_rows = max(256, max_departments // 8)
        self.bound = 0  # the largest absolute sum the tables could hold
        self.departments = 0  # a lower bound: the merged parts' and the largest grouped table's

    def fits(self, bound: int) -> bool:
        """True if sums that could grow by bound still cannot leave 64 bits."""
        return self.bound + bound <= INT64_MAX

    def add(self, table: pyarrow.Table, bound: int, grouped: bool) -> None:
        """Keeps a table of sums (grouped by name or not) within bound, merging the parts it
        grows; raises LimitExceeded past the departments limit."""
        if grouped:
            self._count(table.num_rows)
        self.bound += bound
        merged = False
        for part, piece in zip(self._parts, split(table, len(self._parts))):
            part.add(piece)
            # Merged once its new rows outnumber both the base and twice its departments
            # (each row is then grouped about 1.5 times in all), or the limit's share.
            if part.rows - part.departments > min(max(self._base, 2 * part.departments),
                                                  self._most):
                part.merge()
                merged = True
        unmerged = sum(part.rows - part.departments for part in self._parts)
        merged_departments = sum(part.departments for part in self._parts)
        if (unmerged >= self._check_rows
                and merged_departments + unmerged > self.max_departments):
            self._merge_all()
        elif merged:
            self._count(merged_departments)

    def _count(self, departments: int) -> None:
        self.departments = max(self.departments, departments)
        if self.departments > self.max_departments:
            raise too_many_departments(self.max_departments)

    def _merge_all(self) -> list[_Part]:
        """Merges every part that holds sums (half of them on another thread: Arrow groups
        without the GIL); returns them. Raises LimitExceeded past the limit."""
        parts = [part for part in self._parts if part.tables]
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge") as pool:
            other_half = pool.submit(lambda: [part.merge() for part in parts[1::2]])
            for part in parts[::2]:
                part.merge()
            other_half.result()
        self._count(sum(part.departments for part in parts))
        return parts

    def merged(self) -> pyarrow.Table | None:
        """All sums in one table (one row per name), or None if there are none; the parts
        let go of them (held on, they were a second copy of every name at a job's peak)."""
        parts = self._merge_all()
        if not parts:
            return None
        tables = [part.tables.pop() for part in parts]
        for part in parts:
            part.rows = part.departments = 0
        return pyarrow.concat_tables(tables).combine_chunks()


def final_totals(partials: Partials, exact: dict[str, int], encoding: str) -> Departments:
    """Both paths' sums, decoded, in output order; raises InputError for a total beyond 64 bits."""
    # exact holds the exact path's sums by the Latin-1 view of the name; it may be added to.
    if exact and partials.fits(sum(abs(total) for total in exact.values())):
        partials.add(pyarrow.table({
            "k": pyarrow.array([key.encode("latin-1") for key in exact], pyarrow.binary()),
            "v": pyarrow.array(list(exact.values()), pyarrow.int64())}), 0, grouped=True)
        exact = {}
    table = partials.merged()
    if table is not None and exact:  # sums beyond 64 bits may still come back: add them up
        for key, total in zip(table.column("k").to_pylist(), table.column("v").to_pylist()):
            name = key.decode("latin-1")
            exact[name] = exact.get(name, 0) + total
        table = None
    if table is not None:  # within 64 bits by construction
        keys, totals = table.column("k").chunk(0), table.column("v").chunk(0)
        del table
        if encoding == ENCODING_WINDOWS_1252:
            names = pyarrow.array([decode_windows_1252(key) for key in keys.to_pylist()],
                                  pyarrow.string())
        else:
            names = pyarrow.compute.cast(keys, pyarrow.string())
        del keys
        return Departments.in_output_order(names, totals)
    return _exact_totals(exact, encoding)


def _exact_totals(exact: dict[str, int], encoding: str) -> Departments:
    names, totals = [], []
    for key, total in exact.items():
        name = decode_text(key, encoding)
        if not INT64_MIN <= total <= INT64_MAX:
            bound = f"{INT64_MAX:,}" if total > 0 else f"{INT64_MIN:,}"
            raise InputError(f"The total for department \"{name}\" comes to {total:,}, beyond the "
                             f"largest total that can be kept ({bound}).")
        names.append(name)
        totals.append(total)
    return Departments.in_output_order(pyarrow.array(names, pyarrow.string()),
                                       pyarrow.array(totals, pyarrow.int64()))
