"""Shared fixtures: a real server on 127.0.0.1:0, a real stub, a `serve` process."""

import os

# Before anything can create a QApplication.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import grpc  # noqa: E402
import pytest  # noqa: E402

from bench.server_process import ServerProcess  # noqa: E402
from salesapi import sales_pb2, sales_pb2_grpc  # noqa: E402
from salesapi.client import open_channel  # noqa: E402
from server.app import ServerConfig, create_server  # noqa: E402
from server.limits import Limits  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The window's fixtures (window, open_window, embedded...), for the window's test modules.
pytest_plugins = ["window_fixtures"]


class RunningServer:
    """An in-process server started with create_server, as `serve` and the window do."""

    def __init__(self, storage_dir: Path, limits: Limits | None = None, **settings) -> None:
        """settings: more of ServerConfig's fields (database, lease_seconds...)."""
        self.storage_dir = storage_dir
        self.config = ServerConfig(storage_dir=storage_dir, limits=limits or Limits(),
                                   **settings)
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

    def start(storage_dir: Path | None = None, limits: Limits | None = None,
              **settings) -> RunningServer:
        running = RunningServer(storage_dir or tmp_path / "storage", limits, **settings)
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


def wait_for_job(stub, job_id: str, timeout: float = 30.0) -> sales_pb2.Job:
    """The job once it is no longer RUNNING, asked for through the stub until timeout."""
    deadline = time.monotonic() + timeout
    ended = threading.Event()  # never set: its wait() is a pause that says what it is for
    while True:
        job = stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job_id), timeout=timeout)
        if job.state != sales_pb2.JOB_STATE_RUNNING:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still RUNNING after {timeout} s")
        ended.wait(0.02)


def totals(job: sales_pb2.Job) -> list[tuple[str, int]]:
    return [(d.department, d.total_sales) for d in job.departments]


@pytest.fixture
def serve_process(tmp_path):
    processes = []

    def start(storage_dir: Path | None = None, *extra: str, env: dict | None = None):
        proc = ServerProcess.serve(storage_dir or tmp_path / "storage", *extra, env=env)
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
