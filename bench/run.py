"""One run, one process tree: bare transport, the project end to end (8 KB and 1 MB messages),
the desktop path, and DuckDB on the same files; prints seconds, MB/s, ratios and server peaks.

The bare transport is two servers that only count bytes, a synchronous and an asyncio one, fed
back to back by the same client: each ratio takes the faster of the pair.

Then the no-cliff table (no_cliff.py): every file shape against the plain file, DuckDB and the
bare transport (--no-shapes to skip it, --only shapes for it alone); with --memory, the
server's peak memory with very many departments (memory.py).

    pip install -r bench/requirements.txt
    python bench/run.py            # 100 MB and 1 GB files, about 10 minutes on 2 cores
    python bench/run.py --quick    # 20 MB and 200 MB files, about 3 minutes

Each upload to the project runs against a fresh `python main.py serve` process, so that its
peak memory (VmHWM) is that upload's. Repeated runs alternate transport, project (20 and
~1,000,000 departments) and desktop so that all see the same machine; the table shows medians,
and targets 1, 4 and 5 are medians of the ratios of runs made back to back. Their margins are
a few hundredths on a 2-core machine while one ratio varies by about ±10 % from run to run:
each repeat makes --rounds rounds of transport, project, desktop and many-department runs, so
that the medians rest on more than a handful of ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from statistics import median
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import memory, no_cliff  # noqa: E402
from bench.measure import (KB8, MB1, BareTransport, Measurement, duckdb_group_by,  # noqa: E402
                           ensure, faster, median_of, meets, project_upload)


def transport_in_one_process(path: Path, message: int) -> float:
    """The bare transport with client and server in one process on one event loop, as the window
    runs them."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "transport_server.py"),
                           "--upload", str(path), str(message)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def desktop_upload(path: Path) -> dict:
    """One upload through the desktop window and its embedded server (desktop_run.py)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "desktop_run.py"), str(path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=1800,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"desktop run failed: {done.stdout} {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def run_targets(args: argparse.Namespace, transport: BareTransport, storage: Path) -> None:
    """Measures targets 1 to 5 and prints their table."""
    medium, large = (20, 200) if args.quick else (100, 1000)
    small_file = ensure(args.data_dir / "sales_10mb.csv", 10, 20)
    medium_file = ensure(args.data_dir / f"sales_{medium}mb.csv", medium, 20)
    many_file = ensure(args.data_dir / f"sales_{medium}mb_1m_departments.csv", medium, 1_000_000)
    large_file = ensure(args.data_dir / f"sales_{large}mb.csv", large, 20)

    rows: list[tuple[str, Measurement]] = []
    # Targets 1, 4 and 5: 8 KB messages; transport, project, desktop and the many-department
    # file back to back, so that each ratio compares runs made on the same machine state. The
    # bare transport of each round is the faster of its synchronous and asyncio servers.
    bare, bare_by_kind, project, desktop, many, bare_together = [], [], [], [], [], []
    for _ in range(args.repeats):
        for _round in range(args.rounds):
            pair = transport.upload(medium_file, KB8)
            bare.append(faster(pair))
            bare_by_kind.append(pair)
            project.append(project_upload(medium_file, KB8, storage)[0])
            outcome = desktop_upload(medium_file)
            desktop.append(Measurement(
                "desktop", medium_file, KB8, outcome["seconds"],
                note=f"event loop: {outcome['ticks']} ticks of 10 ms, "
                     f"longest gap {outcome['longest_gap_ms']} ms"))
            many.append(project_upload(many_file, KB8, storage)[0])
        bare_together.append(Measurement("transport", medium_file, KB8,
                                         transport_in_one_process(medium_file, KB8),
                                         note="client and server on one event loop"))
    bare_8k, project_8k, many_8k = median_of(bare), median_of(project), median_of(many)
    many_8k.note = "~1,000,000 departments"
    bare_together_8k, desktop_8k = median_of(bare_together), median_of(desktop)
    rows += [("bare transport", bare_8k), ("project end to end", project_8k),
             ("project, many departments", many_8k),
             ("bare transport, one process", bare_together_8k),
             ("desktop window (embedded server)", desktop_8k)]

    # Targets 2 and 3: 1 MB messages on the large file, DuckDB on the same file; the 10 MB
    # upload's peak is the baseline for memory.
    bare_1m, bare_1m_by_kind, small_runs, large_runs, duck_runs = [], [], [], [], []
    for _ in range(args.repeats):
        pair = transport.upload(large_file, MB1)
        bare_1m.append(faster(pair))
        bare_1m_by_kind.append(pair)
        small_runs.append(project_upload(small_file, MB1, storage)[0])
        large, large_job = project_upload(large_file, MB1, storage)
        large_runs.append(large)
        duck_seconds, duck_totals = duckdb_group_by(large_file)
        duck_runs.append(Measurement("duckdb", large_file, None, duck_seconds,
                                     note="local file, GROUP BY"))
    small_1m, large_1m, duck = median_of(small_runs), median_of(large_runs), median_of(duck_runs)
    small_1m.peak_mib = median([m.peak_mib for m in small_runs])
    large_1m.peak_mib = median([m.peak_mib for m in large_runs])
    small_1m.note = large_1m.note = "peak: median of the runs"
    rows += [("bare transport", median_of(bare_1m)), ("project end to end", small_1m),
             ("project end to end", large_1m), ("DuckDB read_csv + GROUP BY", duck)]
    # Each transport server on its own, after the rows others already read by position.
    rows += transport_rows(bare_by_kind) + transport_rows(bare_1m_by_kind)
    agree = duck_totals == {d.department: d.total_sales for d in large_job.departments}

    print_measurements(rows)
    # Targets 1, 4 and 5 compare runs made back to back in each repeat: the median of those
    # ratios, so that the machine's drift between repeats cancels out.
    side_by_side_1 = median([b.seconds / p.seconds for b, p in zip(bare, project)])
    side_by_side_4 = median([m.seconds / p.seconds for m, p in zip(many, project)])
    side_by_side_5 = median([b.seconds / d.seconds for b, d in zip(bare, desktop)])
    checks = [
        (f"1. 8 KB end to end / bare transport ({len(project)} pairs)", side_by_side_1,
         ">= 0.85"),
        ("2. 1 MB end to end / DuckDB, large file", large_1m.mb_per_s / duck.mb_per_s, ">= 0.5"),
        ("3a. server peak, large upload (MiB)", large_1m.peak_mib, "<= 300"),
        ("3b. peak large / peak 10 MB upload", large_1m.peak_mib / small_1m.peak_mib, "<= 1.25"),
        (f"4. ~1M departments time / 20 departments time ({len(many)} pairs)", side_by_side_4,
         "<= 2"),
        (f"5. desktop / bare transport, 8 KB ({len(desktop)} pairs)", side_by_side_5, ">= 0.7"),
    ]
    context = [
        ("1, context: the same from the medians in the table",
         project_8k.mb_per_s / bare_8k.mb_per_s),
        ("4, context: the same from the medians in the table",
         many_8k.seconds / project_8k.seconds),
        ("5, context: the same from the medians in the table",
         desktop_8k.mb_per_s / bare_8k.mb_per_s),
        ("5, context: bare transport in one process / in two",
         bare_together_8k.mb_per_s / bare_8k.mb_per_s),
        ("5, context: desktop / bare transport in one process",
         desktop_8k.mb_per_s / bare_together_8k.mb_per_s),
        ("1, context: asyncio / synchronous transport server, 8 KB (median of pairs)",
         median([p["sync"].seconds / p["asyncio"].seconds for p in bare_by_kind])),
    ]
    print("| target | measured | goal | met |")
    print("| --- | ---: | --- | --- |")
    for name, value, goal in checks:
        print(f"| {name} | {value:.2f} | {goal} | {'yes' if meets(value, goal) else 'NO'} |")
    for name, value in context:
        print(f"| {name} | {value:.2f} | - | - |")
    print(f"\nDuckDB and the project agree on every total of {large_file.name}: "
          f"{'yes' if agree else 'NO'}")


def transport_rows(pairs: list[dict[str, Measurement]]) -> list[tuple[str, Measurement]]:
    """The table's rows for each bare transport server on its own: the medians of its runs."""
    labels = {"sync": "bare transport, sync server", "asyncio": "bare transport, asyncio server"}
    return [(labels[kind], median_of([pair[kind] for pair in pairs]))
            for kind in BareTransport.KINDS]


def print_measurements(rows: list[tuple[str, Measurement]]) -> None:
    """The table of runs: seconds, MB/s, server peaks."""
    print("\n| what | file | message | seconds | MB/s | server peak MiB | note |")
    print("| --- | --- | --- | ---: | ---: | ---: | --- |")
    for label, m in rows:
        message = {KB8: "8 KB", MB1: "1 MB", None: "-"}.get(m.message, str(m.message))
        peak = f"{m.peak_mib:.0f}" if m.peak_mib is not None else "-"
        print(f"| {label} | {m.path.name} | {message} | {m.seconds:.2f} | {m.mb_per_s:.0f} | "
              f"{peak} | {m.note} |")
    print()


SECTIONS = ("targets", "window", "shapes", "memory")
WINDOW_STALL_GOAL_MS = 100.0


def run_window(args: argparse.Namespace) -> None:
    """The window with ~1,000,000 departments: its longest event-loop stall per phase
    (window_stalls.py), the median of --repeats runs each."""
    medium = 20 if args.quick else 100
    many_file = ensure(args.data_dir / f"sales_{medium}mb_1m_departments.csv", medium, 1_000_000)
    runs = []
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, str(ROOT / "bench" / "window_stalls.py"),
                               str(many_file)], capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise SystemExit(f"window_stalls.py failed:\n{done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    phases = [name for name in runs[0] if name != "departments"]
    print()
    print(f"| window, {runs[0]['departments']:,} departments: phase | longest stall, ms "
          f"(median of {len(runs)}) | worst run | goal | met |")
    print("| --- | ---: | ---: | --- | --- |")
    for phase in phases:
        typical = median(run[phase] for run in runs)
        worst = max(run[phase] for run in runs)
        print(f"| {phase} | {typical:.0f} | {worst:.0f} | <= {WINDOW_STALL_GOAL_MS:.0f} | "
              f"{'yes' if typical <= WINDOW_STALL_GOAL_MS else 'NO'} |")
    print()



def wanted(args: argparse.Namespace, section: str) -> bool:
    """Whether the command line asks for this section (targets and shapes run by default)."""
    if args.only is not None:
        return args.only == section
    return {"targets": True, "window": True, "shapes": not args.no_shapes,
            "memory": args.memory}[section]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 MB and 200 MB instead of 100 MB and 1 GB")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per repeat for targets 1, 4 and 5 (default 3)")
    parser.add_argument("--no-shapes", action="store_true",
                        help="skip the no-cliff section (file shapes)")
    parser.add_argument("--shape-repeats", type=int, default=None,
                        help="back-to-back pairs per shape (default: --repeats)")
    parser.add_argument("--memory", action="store_true",
                        help="also the memory section: ~1M and ~3M departments, 4 uploads at "
                             "once, idle memory after a job (a 300 MB file; about 2 minutes)")
    parser.add_argument("--only", choices=SECTIONS,
                        help="run only this section: targets (1-5), window (stalls with "
                             "~1M departments), shapes (no cliff), memory")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "bench" / "data")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    storage = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    transport = BareTransport()
    try:
        if wanted(args, "targets"):
            run_targets(args, transport, storage)
        if wanted(args, "window"):
            run_window(args)
        if wanted(args, "shapes"):
            no_cliff.run(transport, storage, args.data_dir, 20 if args.quick else 100,
                         args.shape_repeats or args.repeats)
        if wanted(args, "memory"):
            memory.run(storage, args.data_dir, args.quick)
    finally:
        transport.stop()
    print(f"Machine: {os.cpu_count()} cores; Python {sys.version.split()[0]}.")
    print(f"This run took {time.monotonic() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
