"""Load: many uploads from several concurrent clients, every result checked, resources watched.

    python bench/load.py                       # starts its own `serve`; 4 clients x 25 uploads, 2 rounds
    python bench/load.py --clients 8 --uploads 50 --seconds 300
    python bench/load.py --behind-nginx 2      # 2 servers sharing a PostgreSQL history, via nginx
    python bench/load.py --address HOST:PORT   # a server (or nginx) that is already running

Each round runs the same workload against the same server. After each round it reads the
server's threads, open file descriptors and resident memory: threads and descriptors may not
grow from one round to the next, memory not from the first round to the last. Exits non-zero on
a wrong total, a failed upload or growth.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402
from salesapi import sales_pb2, sales_pb2_grpc  # noqa: E402
from salesapi.client import open_channel  # noqa: E402

# Allowed change between rounds: gRPC's pool may start a thread or two on demand.
_THREAD_SLACK = 2
_FD_SLACK = 2
# Resident memory is sampled once after each round, so it catches transient buffers (a block
# pipeline in flight is about 20 MiB): memory is judged last round against first.
_MEMORY_SLACK_MIB = 32


@dataclass
class Workload:
    """Files with the totals the contract says they give."""

    files: list[tuple[str, bytes, dict[str, int], int]] = field(default_factory=list)

    @classmethod
    def make(cls, seed: int = 7) -> "Workload":
        rng = random.Random(seed)
        workload = cls()
        for index in range(6):
            delimiter = [",", ";", "\t", "|"][index % 4]
            departments = [f"Dept {n}" for n in range(rng.randint(3, 40))]
            totals: dict[str, int] = {}
            lines = [delimiter.join(["Date", "Department Name", "Number of Sales"])]
            rejected = 0
            for _ in range(rng.randint(2_000, 40_000)):
                name = rng.choice(departments)
                if rng.random() < 0.002:
                    lines.append(delimiter.join(["2026-01-01", name, "n/a"]))
                    rejected += 1
                    continue
                value = rng.randint(-5, 500)
                totals[name] = totals.get(name, 0) + value
                lines.append(delimiter.join(["2026-01-01", name, str(value)]))
            data = ("\r\n" if index % 2 else "\n").join(lines).encode()
            workload.files.append((f"load{index}.csv", data, totals, rejected))
        return workload


@dataclass
class RoundResult:
    uploads: int = 0
    failures: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    seconds: float = 0.0


def run_round(address: str, workload: Workload, clients: int, uploads: int,
              deadline: float) -> RoundResult:
    """clients threads, each doing `uploads` uploads (or fewer if the deadline passes)."""
    result = RoundResult()
    lock = threading.Lock()

    def client(number: int) -> None:
        rng = random.Random(number)
        with open_channel(address) as channel:
            stub = sales_pb2_grpc.SalesServiceStub(channel)
            for _ in range(uploads):
                if time.monotonic() > deadline:
                    return
                name, data, totals, rejected = rng.choice(workload.files)
                size = rng.choice([8192, 65536, 1 << 20])
                chunks = [sales_pb2.UploadChunk(data=data[:size], filename=name)] + [
                    sales_pb2.UploadChunk(data=data[i:i + size]) for i in range(size, len(data), size)]
                try:
                    job = stub.UploadCSV(iter(chunks), timeout=120)
                    problem = None
                    if {d.department: d.total_sales for d in job.departments} != totals:
                        problem = f"{name}: wrong totals"
                    elif job.rows_rejected != rejected:
                        problem = f"{name}: {job.rows_rejected} rejected, expected {rejected}"
                except Exception as exc:  # any failure is a finding, reported with the rest
                    problem = f"{name}: {exc}"
                with lock:
                    result.uploads += 1
                    result.bytes_sent += len(data)
                    if problem:
                        result.failures.append(problem)

    started = time.monotonic()
    with futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    result.seconds = time.monotonic() - started
    return result


def resources(pids: list[int]) -> dict[str, float]:
    """Threads, descriptors and resident memory of the server processes, added up."""
    figures = {"threads": 0, "fds": 0, "rss_mib": 0.0}
    for pid in pids:
        process = psutil.Process(pid)
        figures["threads"] += process.num_threads()
        figures["fds"] += process.num_fds()
        figures["rss_mib"] += process.memory_info().rss / 2**20
    return figures


def run_load(address: str, pids: list[int], clients: int, uploads: int, rounds: int,
             seconds: float, out=sys.stdout) -> bool:
    """Runs the rounds and prints a report; True if every check held."""
    workload = Workload.make()
    deadline = time.monotonic() + seconds
    before = resources(pids)
    print(f"server before: {before['threads']} threads, {before['fds']} fds, "
          f"{before['rss_mib']:.0f} MiB", file=out)
    history = []
    ok = True
    for number in range(1, rounds + 1):
        result = run_round(address, workload, clients, uploads, deadline)
        after = resources(pids)
        history.append(after)
        mb = result.bytes_sent / 1e6
        print(f"round {number}: {result.uploads} uploads from {clients} clients, "
              f"{mb:.1f} MB in {result.seconds:.1f} s ({mb / result.seconds:.1f} MB/s, "
              f"{result.uploads / result.seconds:.1f} uploads/s), {len(result.failures)} failed; "
              f"server after: {after['threads']} threads, {after['fds']} fds, "
              f"{after['rss_mib']:.0f} MiB", file=out)
        for failure in result.failures[:10]:
            print(f"  {failure}", file=out)
        ok &= not result.failures and result.uploads == clients * uploads
    for previous, current in zip(history, history[1:]):
        servers = max(1, len(pids))  # each may start a thread or open a connection on demand
        if (current["threads"] > previous["threads"] + _THREAD_SLACK * servers
                or current["fds"] > previous["fds"] + _FD_SLACK * servers):
            print(f"threads or files grew from one round to the next: {previous} -> {current}",
                  file=out)
            ok = False
    if history and history[-1]["rss_mib"] > history[0]["rss_mib"] + _MEMORY_SLACK_MIB:
        print(f"memory grew from the first round to the last: {history[0]['rss_mib']:.0f} -> "
              f"{history[-1]['rss_mib']:.0f} MiB", file=out)
        ok = False
    print("all checks held" if ok else "CHECKS FAILED", file=out)
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=25, help="per client and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=300, help="stop starting uploads after this")
    parser.add_argument("--behind-nginx", type=int, default=0, metavar="N",
                        help="start N servers sharing a throwaway PostgreSQL history and one "
                             "output folder, with nginx in front (bench/cluster.py), and load "
                             "nginx")
    parser.add_argument("--address", help="load a server (or nginx) already running at "
                                          "HOST:PORT; its resources are not watched")
    args = parser.parse_args(argv)
    if args.address:
        ok = run_load(args.address, [], args.clients, args.uploads, args.rounds, args.seconds)
    elif args.behind_nginx:
        ok = _load_behind_nginx(args)
    else:
        with tempfile.TemporaryDirectory() as storage:
            server = ServerProcess.serve(Path(storage), "--log-level", "WARNING",
                                         keep_stderr=False)
            try:
                ok = run_load(server.address, [server.process.pid], args.clients, args.uploads,
                              args.rounds, args.seconds)
            finally:
                server.stop(graceful=True)
    return 0 if ok else 1


def _load_behind_nginx(args: argparse.Namespace) -> bool:
    from bench.cluster import nginx_missing, postgres_missing, running_cluster
    problem = postgres_missing() or nginx_missing()
    if problem:
        raise SystemExit(problem)
    with running_cluster(args.behind_nginx, "--log-level", "WARNING") as cluster:
        print(f"{len(cluster.servers)} server(s) sharing a PostgreSQL history, behind nginx at "
              f"{cluster.nginx.address}")
        return run_load(cluster.nginx.address, [s.process.pid for s in cluster.servers],
                        args.clients, args.uploads, args.rounds, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
