"""Shared fixtures: a real server on 127.0.0.1:0, a real stub, a `serve` process."""

import os

# Before anything can create a QApplication.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import grpc  # noqa: E402
import pytest  # noqa: E402

from salesapi import sales_pb2, sales_pb2_grpc  # noqa: E402
from salesapi.client import open_channel  # noqa: E402
from server.app import ServerConfig, create_server  # noqa: E402
from server.jobs import Limits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class RunningServer:
    """An in-process server started with create_server, as `serve` and the window do."""

    def __init__(self, storage_dir: Path, limits: Limits | None = None) -> None:
        self.storage_dir = storage_dir
        self.config = ServerConfig(storage_dir=storage_dir, limits=limits or Limits())
        self.server, self.port = create_server("127.0.0.1:0", self.config)
        self.server.start()
        self.address = f"127.0.0.1:{self.port}"
        self.output_dir = self.config.resolved_output_dir

    def stop(self) -> None:
        self.server.stop(grace=1.0)


@pytest.fixture
def start_server(tmp_path):
    """Starts servers on free ports (several may share a storage folder one after another)."""
    servers = []

    def start(storage_dir: Path | None = None, limits: Limits | None = None) -> RunningServer:
        running = RunningServer(storage_dir or tmp_path / "storage", limits)
        servers.append(running)
        return running

    yield start
    for running in servers:
        running.stop()


@pytest.fixture
def running_server(start_server) -> RunningServer:
    return start_server()


@pytest.fixture
def channel(running_server):
    with open_channel(running_server.address) as chan:
        yield chan


@pytest.fixture
def stub(channel) -> sales_pb2_grpc.SalesServiceStub:
    return sales_pb2_grpc.SalesServiceStub(channel)


def chunks_of(data: bytes, size: int = 8192, filename: str = "sales.csv"):
    """The request stream for one file: the first chunk names it."""
    yield sales_pb2.UploadChunk(data=data[:size], filename=filename)
    for start in range(size, len(data), size):
        yield sales_pb2.UploadChunk(data=data[start:start + size])


def upload(stub, data: bytes, size: int = 8192, filename: str = "sales.csv") -> sales_pb2.Job:
    """Uploads bytes through the real stub and returns the Job."""
    return stub.UploadCSV(chunks_of(data, size, filename), timeout=60)


def totals(job: sales_pb2.Job) -> list[tuple[str, int]]:
    return [(d.department, d.total_sales) for d in job.departments]


class ServeProcess:
    """`python main.py serve` in a child process, port read from its first line."""

    def __init__(self, storage_dir: Path, *extra: str, env: dict | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), "serve", "--port", "0",
             "--storage-dir", str(storage_dir), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            env={**os.environ, **(env or {})})
        line = self.process.stdout.readline()  # blocks until the server listens or exits
        if "listening on" not in line:
            self.process.kill()
            raise RuntimeError(f"serve did not start: {line!r} {self.process.stderr.read()}")
        self.address = line.split("listening on ")[1].split()[0]
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        self.process.stdout.close()
        self.process.stderr.close()


@pytest.fixture
def serve_process(tmp_path):
    processes = []

    def start(storage_dir: Path | None = None, *extra: str, env: dict | None = None):
        proc = ServeProcess(storage_dir or tmp_path / "storage", *extra, env=env)
        processes.append(proc)
        return proc

    yield start
    for proc in processes:
        proc.stop()


def rpc_error(callable_, *args, **kwargs) -> grpc.RpcError:
    """Calls and returns the RpcError it must raise."""
    with pytest.raises(grpc.RpcError) as info:
        callable_(*args, **kwargs)
    return info.value
