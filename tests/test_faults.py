"""Faults: a full or unusable output folder, a client that vanishes, a locked history, and the
server killed in the middle of uploads and output writes."""

import csv
import io
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT, chunks_of, rpc_error, upload, wait_for_job
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import open_channel

SALES = b"Department Name,Number of Sales\nToys,5\nFood,7\nToys,1\n"


def many_departments(count: int) -> bytes:
    rows = "".join(f"Department {i:07d},{i % 97}\n" for i in range(count))
    return ("Department Name,Number of Sales\n" + rows).encode()


def expected_totals(data: bytes) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in list(csv.reader(io.StringIO(data.decode())))[1:]:
        if row[1].lstrip("-").isdigit():  # repeated header lines are rejected rows
            totals[row[0]] = totals.get(row[0], 0) + int(row[1])
    return totals


def test_output_folder_unusable(stub, running_server):
    output = running_server.output_dir
    output.rename(output.with_name("moved-away"))
    output.write_text("a file where the folder was")
    error = rpc_error(upload, stub, SALES)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == ("The totals file could not be written (Not a directory). "
                               "Nothing was kept.")
    [job] = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert job.state == sales_pb2.JOB_STATE_FAILED and job.error == error.details()
    output.unlink()
    output.with_name("moved-away").rename(output)
    assert upload(stub, SALES).state == sales_pb2.JOB_STATE_COMPLETED


def test_output_file_too_large_for_the_disk(stub, running_server):
    """A file-size limit stands in for a full disk: writes past it fail with EFBIG (serve
    ignores SIGXFSZ; this in-process server needs the test to do the same)."""
    data = many_departments(150_000)  # about 3 MB of output
    limit = 2 * 1024 * 1024
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        error = rpc_error(upload, stub, data, 65536)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error.details() == ("The totals file could not be written (the file grew past "
                               "the largest size allowed). Nothing was kept.")
    assert list(running_server.output_dir.iterdir()) == []
    with open_channel(running_server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert upload(stub, data, 65536).state == sales_pb2.JOB_STATE_COMPLETED
    states = [j.state for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs]
    assert states == [sales_pb2.JOB_STATE_COMPLETED, sales_pb2.JOB_STATE_FAILED]


CLIENT = """
import sys, threading
sys.path.insert(0, {root!r})
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import open_channel
def chunks():
    yield sales_pb2.UploadChunk(data=b"Department Name,Number of Sales\\n" + b"Toys,1\\n" * 5000)
    threading.Event().wait()  # never ends: the process is killed
channel = open_channel({address!r})
call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV.future(chunks())
print(dict(call.initial_metadata())["job-id"], flush=True)
threading.Event().wait()
"""


def test_client_that_vanishes(running_server, stub):
    client = subprocess.Popen([sys.executable, "-c", CLIENT.format(
        root=str(ROOT), address=running_server.address)], stdout=subprocess.PIPE, text=True)
    job_id = client.stdout.readline().strip()
    running = stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job_id))
    assert running.state == sales_pb2.JOB_STATE_RUNNING
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    client.stdout.close()
    job = wait_for_job(stub, job_id)
    assert job.state == sales_pb2.JOB_STATE_CANCELLED
    assert list(running_server.output_dir.iterdir()) == []
    assert upload(stub, SALES).state == sales_pb2.JOB_STATE_COMPLETED


def test_locked_history_is_one_sentence(tmp_path, serve_process):
    storage = tmp_path / "locked"
    serve = serve_process(storage)  # creates the history
    serve.stop()
    holder = sqlite3.connect(storage / "jobs.sqlite3", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0",
                               "--storage-dir", str(storage)],
                              capture_output=True, text=True, timeout=60)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 3
    assert "database is locked" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("moment", ["last chunk sent", "first job answered"])
def test_killed_during_uploads_and_output_writes(serve_process, start_server, tmp_path, moment):
    """SIGKILL while jobs stream and while the big one writes its output; after a restart every
    job is COMPLETED with a whole file, or FAILED/CANCELLED with none."""
    storage = tmp_path / "killed"
    serve = serve_process(storage)
    files = {"big": many_departments(150_000), "a": SALES, "b": SALES * 3}
    sent_everything = threading.Event()
    answered = threading.Event()

    def stream(data, last_event):
        yield from chunks_of(data, 65536)
        if last_event is not None:
            last_event.set()

    with open_channel(serve.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        calls = {name: stub.UploadCSV.future(
            stream(data, sent_everything if name == "big" else None), timeout=120)
            for name, data in files.items()}
        calls["a"].add_done_callback(lambda _call: answered.set())
        # Every job must be running before the kill (under load, a small call can otherwise
        # reach the server only after the big one has sent everything).
        assert all(dict(call.initial_metadata()).get("job-id") for call in calls.values())
        trigger = sent_everything if moment == "last chunk sent" else answered
        assert trigger.wait(60)
        serve.process.send_signal(signal.SIGKILL)
        serve.process.wait(timeout=30)
        for call in calls.values():
            try:
                call.result()
            except grpc.RpcError:
                pass

    restarted = start_server(storage)
    output = restarted.output_dir
    with open_channel(restarted.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        listed = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
        full_jobs = [stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id))
                     for job in listed]
    assert len(full_jobs) == 3
    names_left = set(os.listdir(output))
    assert not [name for name in names_left if name.endswith(".tmp")]
    for job in full_jobs:
        path = output / f"{job.job_id}.csv"
        if job.state == sales_pb2.JOB_STATE_COMPLETED:
            departments = {d.department: d.total_sales for d in job.departments}
            with open(path, encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
            assert rows[0] == ["Department Name", "Total Number of Sales"]
            assert {name: int(total) for name, total in rows[1:]} == departments
            assert any(expected_totals(data) == departments for data in files.values())
        else:
            assert job.state in (sales_pb2.JOB_STATE_FAILED, sales_pb2.JOB_STATE_CANCELLED)
            assert not path.exists() and f"{job.job_id}.rejected.csv" not in names_left
