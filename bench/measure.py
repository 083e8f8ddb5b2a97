"""The benchmark's ways of timing one thing: an upload to the project, to the bare transport,
DuckDB on the same file; and the files they read."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.generate import generate  # noqa: E402
from bench.server_process import ServerProcess  # noqa: E402
from salesapi import sales_pb2_grpc  # noqa: E402
from salesapi.client import file_chunks, open_channel  # noqa: E402

KB8 = 8192
MB1 = 1 << 20
JOB_COMPLETED = 2


@dataclass
class Measurement:
    """One timed run of something on one file."""

    name: str
    path: Path
    message: int | None
    seconds: float
    peak_mib: float | None = None
    note: str = ""

    @property
    def mb_per_s(self) -> float:
        """Megabytes (10^6) of the file per second."""
        return self.path.stat().st_size / 1e6 / self.seconds


def upload(address: str, path: Path, message: int):
    """Streams path as the command-line client does; returns (seconds, reply)."""
    with open_channel(address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        started = time.perf_counter()
        reply = stub.UploadCSV(file_chunks(path, message), timeout=1800)
        return time.perf_counter() - started, reply


def project_upload(path: Path, message: int, storage: Path) -> tuple[Measurement, object]:
    """One upload to a fresh `python main.py serve`, so that its peak memory is this upload's."""
    server = ServerProcess.serve(storage, "--log-level", "WARNING", keep_stderr=False)
    try:
        seconds, job = upload(server.address, path, message)
        peak = server.peak_mib()
    finally:
        server.stop(graceful=True)
    if job.state != JOB_COMPLETED:
        raise RuntimeError(f"upload of {path} ended {job.state}: {job.error}")
    return Measurement("project", path, message, seconds, peak), job


def duckdb_group_by(path: Path, options: str = "") -> tuple[float, dict[str, int]]:
    """DuckDB's read_csv + GROUP BY on path; options are more read_csv arguments
    ("delim=';'"). Returns (seconds, totals)."""
    import duckdb

    arguments = f"'{path}'" + (f", {options}" if options else "")
    started = time.perf_counter()
    rows = duckdb.sql(f"SELECT \"Department Name\", SUM(\"Number of Sales\") "
                      f"FROM read_csv({arguments}) GROUP BY 1").fetchall()
    return time.perf_counter() - started, {name: int(total) for name, total in rows}


class BareTransport:
    """The bare transport twice, a synchronous gRPC server and an asyncio one, both counting
    bytes only: the baseline is whichever is faster in each back-to-back pair."""

    KINDS = ("sync", "asyncio")

    def __init__(self) -> None:
        script = str(ROOT / "bench" / "transport_server.py")
        self._servers: dict[str, ServerProcess] = {}
        try:
            for kind, flag in zip(self.KINDS, ("--sync", "--aio")):
                self._servers[kind] = ServerProcess([sys.executable, script, flag],
                                                    keep_stderr=False)
        except BaseException:
            self.stop()
            raise
        self._turn = 0

    def upload(self, path: Path, message: int) -> dict[str, Measurement]:
        """One upload to each server, back to back; which goes first alternates from call to
        call, so that neither always has the warmer machine."""
        self._turn += 1
        kinds = self.KINDS if self._turn % 2 else self.KINDS[::-1]
        runs = {}
        for kind in kinds:
            seconds, reply = upload(self._servers[kind].address, path, message)
            if reply.bytes_received != path.stat().st_size:
                raise RuntimeError(f"the {kind} transport received {reply.bytes_received} bytes "
                                   f"of {path.stat().st_size}")
            runs[kind] = Measurement("transport", path, message, seconds, note=kind)
        return {kind: runs[kind] for kind in self.KINDS}

    def stop(self) -> None:
        """Stops both servers."""
        for server in self._servers.values():
            server.stop(graceful=True)


def meets(value: float, goal: str) -> bool:
    """Whether value meets a goal written ">= 0.85" or "<= 2"."""
    operator, bound = goal.split()
    return value >= float(bound) if operator == ">=" else value <= float(bound)


def faster(runs: dict[str, Measurement]) -> Measurement:
    """The quicker of one back-to-back pair of bare transport runs, its note naming it."""
    quicker = min(runs.values(), key=lambda m: m.seconds)
    return Measurement(quicker.name, quicker.path, quicker.message, quicker.seconds,
                       note=f"faster of the pair: {quicker.note}")


def warm(path: Path) -> Path:
    """Reads the file once, so that it is in the page cache for every reader alike."""
    with open(path, "rb") as handle:
        while handle.read(1 << 24):
            pass
    return path


def ensure(path: Path, size_mb: float, departments: int) -> Path:
    """The plain file, generated unless a file of about that size is there already."""
    if not path.exists() or abs(path.stat().st_size - size_mb * 1e6) > 1e6:
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        generate(path, int(size_mb * 1_000_000), departments)
    return warm(path)


def ensure_shape(path: Path, size_mb: float, departments: int, shape: str) -> Path:
    """A file of the shape holding the rows of the plain file of size_mb; generated unless
    there is one newer than the generator (its size says nothing: shapes differ in size)."""
    generator = ROOT / "bench" / "generate.py"
    if not path.exists() or path.stat().st_mtime < generator.stat().st_mtime:
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        generate(path, int(size_mb * 1_000_000), departments, shape=shape)
    return warm(path)


def median_of(runs: list[Measurement]) -> Measurement:
    """The run with the median time (the upper one of an even count)."""
    ordered = sorted(runs, key=lambda m: m.seconds)
    return ordered[len(ordered) // 2]
