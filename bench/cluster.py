"""Several servers on this machine as a company would run them on several: a throwaway
PostgreSQL cluster, servers sharing it and one output folder, and nginx in front with
deploy/nginx/sales-csv.conf. The tests' and the benchmark's one way of starting them.

    python bench/cluster.py --servers 2      # prints the address; Ctrl-C stops everything
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.server_process import ServerProcess  # noqa: E402

NGINX_CONF = ROOT / "deploy" / "nginx" / "sales-csv.conf"
_PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
# PostgreSQL refuses to run as root: as root, the cluster belongs to this user.
_UNPRIVILEGED = "nobody"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_missing() -> str:
    """Why a throwaway PostgreSQL cannot be started here ("" if it can)."""
    if not _PG_BIN or not (_PG_BIN[-1] / "initdb").exists():
        return "PostgreSQL is not installed (apt-get install postgresql; .ci/run installs it)"
    return ""


def nginx_missing() -> str:
    """Why nginx cannot be started here ("" if it can)."""
    if _nginx() is None:
        return "nginx is not installed (apt-get install nginx; .ci/run installs it)"
    return ""


def _nginx() -> str | None:
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx",) if os.access(path, os.X_OK)), None)


class Postgres:
    """A PostgreSQL cluster in a temporary folder, on a free loopback port; stop() removes it."""

    def __init__(self) -> None:
        bin_dir = _PG_BIN[-1]
        self.folder = Path(tempfile.mkdtemp(prefix="sales-pg-"))
        user = _UNPRIVILEGED if os.geteuid() == 0 else None
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
        # runuser rather than subprocess's user=: changing user makes Python fork() instead of
        # vfork(), and gRPC's fork handlers then run in the child of a process with gRPC
        # threads, which crashed pg_ctl (SIGSEGV) now and then.
        as_user = ["runuser", "-u", user, "--"] if user is not None else []
        self._run = lambda *command: subprocess.run(
            [*as_user, str(bin_dir / command[0]), *command[1:]], check=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.port = free_port()
        data = self.folder / "data"
        self._data = data
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")
        self.resume()
        self._count = 0

    def pause(self) -> None:
        """Stops the database server (its data stays), as an operator's restart would."""
        self._run("pg_ctl", "-D", str(self._data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        """Starts the database server (again)."""
        self._run("pg_ctl", "-D", str(self._data), "-l", str(self.folder / "log"), "-w",
                  "-t", "60", "-o",
                  f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} "
                  "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                  "-c max_connections=200", "start")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database's URL."""
        import psycopg
        self._count += 1
        name = f"sales_{os.getpid()}_{self._count}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self._data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class Nginx:
    """nginx with deploy/nginx/sales-csv.conf in front of `upstreams` (HOST:PORT each)."""

    def __init__(self, upstreams: list[str]) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sales-nginx-"))
        self.folder.chmod(0o755)  # its workers (nobody, when started as root) write temp files
        self.port = free_port()
        conf = NGINX_CONF.read_text()
        servers = "".join(f"    server {address} max_fails=1 fail_timeout=10s;\n"
                          for address in upstreams)
        conf = re.sub(r"(upstream sales_csv_servers \{\n)(?:.*\n)*?(    # Keep HTTP/2)",
                      lambda match: match.group(1) + servers + match.group(2), conf, count=1)
        conf = conf.replace("listen 50051 http2;", f"listen 127.0.0.1:{self.port} http2;")
        (self.folder / "sales-csv.conf").write_text(conf)
        temp = self.folder / "temp"
        temp.mkdir(mode=0o777)
        temp.chmod(0o777)
        (self.folder / "nginx.conf").write_text(
            f"worker_processes 1;\npid {self.folder}/nginx.pid;\nerror_log {self.folder}/error.log;\n"
            "events { worker_connections 1024; }\n"
            "http {\n"
            f"    access_log off;\n    client_body_temp_path {temp}/body;\n"
            f"    proxy_temp_path {temp}/proxy;\n    fastcgi_temp_path {temp}/fastcgi;\n"
            f"    uwsgi_temp_path {temp}/uwsgi;\n    scgi_temp_path {temp}/scgi;\n"
            f"    include {self.folder}/sales-csv.conf;\n}}\n")
        self.process = subprocess.Popen(
            [_nginx(), "-p", str(self.folder), "-e", str(self.folder / "error.log"),
             "-c", str(self.folder / "nginx.conf"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.address = f"127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx did not start: {self.process.stderr.read()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen within 10 s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process.stderr.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def shared_server(database: str, output_dir: Path, storage_dir: Path, *extra: str,
                  keep_stderr: bool = True) -> ServerProcess:
    """`python main.py serve` on a free port with a shared history and output folder."""
    return ServerProcess.serve(storage_dir, "--database", database, "--output-dir",
                               str(output_dir), *extra, keep_stderr=keep_stderr)


@dataclass
class Cluster:
    """Servers sharing a PostgreSQL history and an output folder, nginx in front."""

    database: str
    output_dir: Path
    servers: list[ServerProcess]
    nginx: Nginx


@contextmanager
def running_cluster(count: int, *extra: str) -> Iterator[Cluster]:
    """count servers (`serve` with extra flags) and nginx, all stopped on leaving."""
    postgres = Postgres()
    folder = Path(tempfile.mkdtemp(prefix="sales-cluster-"))
    servers, nginx = [], None
    try:
        database = postgres.new_database()
        for number in range(count):
            servers.append(shared_server(database, folder / "processed", folder / f"s{number}",
                                         *extra, keep_stderr=False))
        nginx = Nginx([server.address for server in servers])
        yield Cluster(database, folder / "processed", servers, nginx)
    finally:
        if nginx is not None:
            nginx.stop()
        for server in servers:
            server.stop(graceful=True)
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=2)
    args = parser.parse_args(argv)
    problem = postgres_missing() or nginx_missing()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    with running_cluster(args.servers) as cluster:
        print(f"{args.servers} servers ({', '.join(s.address for s in cluster.servers)}) "
              f"sharing {cluster.database} and {cluster.output_dir} behind nginx at "
              f"{cluster.nginx.address}; Ctrl-C stops them", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
