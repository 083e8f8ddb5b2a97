"""The memory section of bench/run.py (--memory): the server's peak (VmHWM) for one upload with
about 1,000,000 and 3,000,000 departments and for a 20-department 1 GB file, four uploads at once
against one, and the idle server's resident memory before a big job and 5 s after it."""

from __future__ import annotations

import time
from concurrent import futures
from pathlib import Path

from bench.measure import JOB_COMPLETED, MB1, ensure, meets, project_upload, upload
from bench.server_process import ServerProcess

ONE_MILLION_PEAK = "<= 300"
THREE_MILLION_PEAK = "<= 700"
LARGE_PEAK = "<= 200"
# The server is left this long after a job before its resident memory is read: what it keeps
# while idle, not what a job still holds while it ends.
IDLE_SECONDS = 5
CONCURRENT = 4


def _fresh_server(storage: Path) -> ServerProcess:
    return ServerProcess.serve(storage, "--log-level", "WARNING", keep_stderr=False)


def concurrent_peak(path: Path, storage: Path, count: int = CONCURRENT) -> tuple[float, float]:
    """count uploads of path at once to one fresh server: (seconds, server peak MiB)."""
    server = _fresh_server(storage)
    try:
        started = time.perf_counter()
        with futures.ThreadPoolExecutor(count) as pool:
            jobs = list(pool.map(lambda _: upload(server.address, path, MB1)[1], range(count)))
        seconds = time.perf_counter() - started
        peak = server.peak_mib()
    finally:
        server.stop(graceful=True)
    if any(job.state != JOB_COMPLETED for job in jobs):
        raise RuntimeError(f"a concurrent upload of {path.name} did not complete")
    return seconds, peak


def idle_resident(path: Path, storage: Path) -> tuple[float, float]:
    """Resident MiB of an idle fresh server, and again IDLE_SECONDS after one upload of path."""
    server = _fresh_server(storage)
    try:
        time.sleep(IDLE_SECONDS)  # idle alike before and after: start-up's buffers settle
        before = server.resident_mib()
        _seconds, job = upload(server.address, path, MB1)
        time.sleep(IDLE_SECONDS)
        after = server.resident_mib()
    finally:
        server.stop(graceful=True)
    if job.state != JOB_COMPLETED:
        raise RuntimeError(f"the upload of {path.name} did not complete")
    return before, after


def run(storage: Path, data_dir: Path, quick: bool) -> None:
    """Measures and prints the memory table."""
    medium, three_size, large = (20, 60, 200) if quick else (100, 300, 1000)
    one_million = ensure(data_dir / f"sales_{medium}mb_1m_departments.csv", medium, 1_000_000)
    # 300 MB of rows drawn from 3,000,000 names hold about 2.85 million of them.
    three_million = ensure(data_dir / f"sales_{three_size}mb_3m_departments.csv", three_size,
                           3_000_000)
    large_file = ensure(data_dir / f"sales_{large}mb.csv", large, 20)
    rows = []
    for path, goal in ((one_million, ONE_MILLION_PEAK), (three_million, THREE_MILLION_PEAK),
                       (large_file, LARGE_PEAK)):
        measured, job = project_upload(path, MB1, storage)
        rows.append((f"one upload, {job.department_count:,} departments", path,
                     f"{measured.peak_mib:.0f}", goal, 'yes' if meets(measured.peak_mib, goal) else 'NO',
                     f"{measured.seconds:.1f} s"))
    one_peak = float(rows[0][2])
    seconds, peak = concurrent_peak(one_million, storage)
    rows.append((f"{CONCURRENT} uploads at once, as the first row", one_million, f"{peak:.0f}",
                 "-", "-", f"{peak / one_peak:.2f} x one upload's peak; {seconds:.1f} s"))
    before, after = idle_resident(one_million, storage)
    rows.append((f"idle resident, before one upload / {IDLE_SECONDS} s after it", one_million,
                 f"{before:.0f} / {after:.0f}", "-", "-", f"{after - before:+.0f} MiB kept"))
    print("\n## Memory: the server's peak (VmHWM), 1 MB messages, a fresh `serve` each\n")
    print("| what | file | server MiB | goal | met | note |")
    print("| --- | --- | ---: | --- | --- | --- |")
    for what, path, mib, goal, met, note in rows:
        print(f"| {what} | {path.name} | {mib} | {goal} | {met} | {note} |")
