"""The no-cliff section of bench/run.py: every file shape (bench/generate.py) against the plain
file, DuckDB and the bare transport, each ratio over runs made back to back.

Per shape and repeat: the plain file then the shape's file with 1 MB messages (time / plain),
DuckDB on the shape's file (speed / DuckDB), the bare transport then the project with 8 KB
messages (speed / bare transport). Every project upload runs against a fresh `main.py serve`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from statistics import median

import grpc

from bench.generate import SHAPES, bad_number_rows
from bench.measure import (KB8, MB1, BareTransport, Measurement, duckdb_group_by, ensure,
                           ensure_shape, faster, median_of, meets, project_upload)

# What DuckDB needs to be told beyond read_csv(path), by shape. Windows-1252 needs DuckDB's
# encodings extension (downloaded on first use); the generated names use only letters that
# Latin-1, which DuckDB reads without it, maps alike.
DUCKDB_OPTIONS = {
    "bad_numbers": "types={'Number of Sales': 'BIGINT'}, ignore_errors=true",
    "semicolon_1252": "encoding='latin-1'",
}
TIME_PER_PLAIN = "<= 1.25"  # time with 1 MB messages / the plain file's time
SPEED_PER_DUCKDB = ">= 0.6"  # speed with 1 MB messages / DuckDB's speed on the same file
SPEED_PER_TRANSPORT = ">= 0.85"  # speed with 8 KB messages / the bare transport's


@dataclass
class ShapeRuns:
    """Everything measured for one shape, in back-to-back pairs."""

    shape: str
    path: Path
    plain_1m: list[Measurement] = field(default_factory=list)  # each just before shape_1m's
    shape_1m: list[Measurement] = field(default_factory=list)
    duck_seconds: list[float] = field(default_factory=list)
    transport: list[dict[str, Measurement]] = field(default_factory=list)
    shape_8k: list[Measurement] = field(default_factory=list)
    agree: bool | None = None  # the project's totals equal DuckDB's (the last pair)
    rejected: int | None = None
    known_rejected: int = 0
    duck_error: str | None = None
    error: str | None = None

    def time_per_plain(self) -> float:
        """Median of shape time / plain time over the back-to-back pairs."""
        return median(s.seconds / p.seconds for s, p in zip(self.shape_1m, self.plain_1m))

    def speed_per_duckdb(self) -> float:
        """Median of DuckDB time / project time over the back-to-back pairs."""
        return median(d / s.seconds for d, s in zip(self.duck_seconds, self.shape_1m))

    def speed_per_transport(self) -> float:
        """Median of bare transport time (the faster server) / project time, 8 KB messages."""
        return median(faster(t).seconds / s.seconds for t, s in zip(self.transport, self.shape_8k))


def run(transport: BareTransport, storage: Path, data_dir: Path, size_mb: int,
        repeats: int) -> dict[str, ShapeRuns]:
    """Measures every shape `repeats` times, shapes interleaved; prints and returns the runs."""
    plain = ensure(data_dir / f"sales_{size_mb}mb.csv", size_mb, 20)
    results = {}
    for shape in SHAPES:
        path = plain if shape == "plain" else ensure_shape(
            data_dir / f"sales_{size_mb}mb_{shape}.csv", size_mb, 20, shape)
        results[shape] = ShapeRuns(shape, path, known_rejected=bad_number_rows(path))
    # Repeats outside, shapes inside: a drift of the machine spreads over every shape alike.
    for _ in range(repeats):
        for runs in results.values():
            if runs.error is None:
                _measure_round(runs, plain, transport, storage)
    print_table(results, size_mb, repeats)
    return results


def _measure_round(runs: ShapeRuns, plain: Path, transport: BareTransport,
                   storage: Path) -> None:
    """One back-to-back round for one shape; a failed upload is noted and ends the shape."""
    try:
        runs.plain_1m.append(project_upload(plain, MB1, storage)[0])
        measured, job = project_upload(runs.path, MB1, storage)
        runs.shape_1m.append(measured)
        runs.rejected = job.rows_rejected
        _duckdb_round(runs, {d.department: d.total_sales for d in job.departments})
        runs.transport.append(transport.upload(runs.path, KB8))
        runs.shape_8k.append(project_upload(runs.path, KB8, storage)[0])
    except (RuntimeError, grpc.RpcError) as exc:
        details = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)
        runs.error = f"the upload failed: {details}"


def _duckdb_round(runs: ShapeRuns, totals: dict[str, int]) -> None:
    """DuckDB on the shape's file; notes whether its totals equal the project's."""
    import duckdb

    if runs.duck_error is not None:
        return
    try:
        seconds, duck_totals = duckdb_group_by(runs.path, DUCKDB_OPTIONS.get(runs.shape, ""))
    except duckdb.Error as exc:
        # DuckDB cannot read this shape: the table says so instead of a ratio.
        runs.duck_error = str(exc).splitlines()[0][:80]
        return
    runs.duck_seconds.append(seconds)
    runs.agree = duck_totals == totals


def _judged(value: float, goal: str) -> str:
    return f"{value:.2f} {'yes' if meets(value, goal) else 'NO'}"


def _row(runs: ShapeRuns) -> str:
    """One shape's line of the table."""
    size = f"{runs.path.stat().st_size / 1e6:.0f}"
    if not runs.shape_8k:
        return f"| {runs.shape} | {size} | {runs.error} | | | | | | | | | |"
    pairs = runs.transport
    sync = median(p["sync"].seconds for p in pairs)
    aio = median(p["asyncio"].seconds for p in pairs)
    if runs.duck_error is None:
        duck = f"{median(runs.duck_seconds):.2f}"
        per_duck = _judged(runs.speed_per_duckdb(), SPEED_PER_DUCKDB)
        agree = "yes" if runs.agree else "NO"
    else:
        duck, per_duck, agree = f"cannot read: {runs.duck_error}", "-", "- (no DuckDB)"
    rejected_ok = runs.rejected == runs.known_rejected
    rejected = f"{runs.rejected:,} of {runs.known_rejected:,} {'yes' if rejected_ok else 'NO'}"
    note = f" ({runs.error})" if runs.error else ""
    return (f"| {runs.shape}{note} | {size} | {median_of(runs.shape_1m).seconds:.2f} | "
            f"{_judged(runs.time_per_plain(), TIME_PER_PLAIN)} | "
            f"{median(m.peak_mib for m in runs.shape_1m):.0f} | {duck} | {per_duck} | "
            f"{median_of(runs.shape_8k).seconds:.2f} | {sync:.2f} / {aio:.2f} | "
            f"{_judged(runs.speed_per_transport(), SPEED_PER_TRANSPORT)} | {agree} | "
            f"{rejected} |")


def _worst(results: dict[str, ShapeRuns], ratio: str, goal: str) -> tuple[str, float] | None:
    """The shape farthest from the goal on one ratio, and its value."""
    values = []
    for runs in results.values():
        if runs.shape_8k and (ratio != "speed_per_duckdb" or runs.duck_error is None):
            values.append((getattr(runs, ratio)(), runs.shape))
    if not values:
        return None
    value, shape = (max if goal.startswith("<=") else min)(values)
    return shape, value


def print_table(results: dict[str, ShapeRuns], size_mb: int, repeats: int) -> None:
    """The no-cliff table, one line per shape, then the worst shape per target."""
    print(f"\n## No cliff: file shapes ({size_mb} MB of plain rows in every shape, "
          f"{repeats} back-to-back pairs per ratio)\n")
    print("| shape | MB | 1 MB msgs: s | time / plain (<= 1.25) | peak MiB | DuckDB s | "
          "speed / DuckDB (>= 0.6) | 8 KB msgs: s | transport s (sync / asyncio) | "
          "speed / transport (>= 0.85) | totals = DuckDB | rejected of known |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for runs in results.values():
        print(_row(runs))
    print()
    for shape in SHAPES.values():
        print(f"- {shape.name}: {shape.description}"
              + (f"; DuckDB: {DUCKDB_OPTIONS[shape.name]}" if shape.name in DUCKDB_OPTIONS
                 else ""))
    print("\n| no-cliff target | worst shape | measured | goal | met |")
    print("| --- | --- | ---: | --- | --- |")
    for label, ratio, goal in (
            ("1 MB messages: time / plain file's time", "time_per_plain", TIME_PER_PLAIN),
            ("1 MB messages: speed / DuckDB's", "speed_per_duckdb", SPEED_PER_DUCKDB),
            ("8 KB messages: speed / bare transport's", "speed_per_transport",
             SPEED_PER_TRANSPORT)):
        worst = _worst(results, ratio, goal)
        if worst is None:
            print(f"| {label} | - | - | {goal} | NO |")
            continue
        value, met = _judged(worst[1], goal).split()
        print(f"| {label} | {worst[0]} | {value} | {goal} | {met} |")
    failed = [runs.shape for runs in results.values() if runs.error]
    # A shape whose upload failed is named above; these two judge the uploads that ran.
    agree = all(runs.agree for runs in results.values() if runs.agree is not None)
    rejected = all(runs.rejected == runs.known_rejected for runs in results.values()
                   if runs.rejected is not None)
    print(f"\nEvery shape uploaded: {'yes' if not failed else 'NO (' + ', '.join(failed) + ')'}; "
          f"totals equal DuckDB's where it reads the file: {'yes' if agree else 'NO'}; "
          f"rows rejected as known: {'yes' if rejected else 'NO'}.")
