"""A shared server against careless or hostile clients, and faults that never lie: the real
server on 127.0.0.1:0, real stubs and raw channels, bounded loops that stop by themselves."""

import os
import socket
import sqlite3
import stat
import subprocess
import sys
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import ROOT, rpc_error, totals, upload, wait_for_job
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import open_channel
from server.limits import Limits

SALES = b"Department Name,Number of Sales\nToys,3\nFood,4\n"
UPLOAD_METHOD = "/sales.SalesService/UploadCSV"


def held_upload(stub, release: threading.Event, data: bytes = SALES[:20], empty_every=None):
    """Starts an upload that sends `data` and then nothing (or only empty messages every
    `empty_every` seconds) until release is set; returns the call's future."""
    def requests():
        yield sales_pb2.UploadChunk(data=data, filename="idle.csv")
        while not release.wait(empty_every or 30):
            yield sales_pb2.UploadChunk()
    return stub.UploadCSV.future(requests(), timeout=60)


def wait_until(condition, timeout: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    pause = threading.Event()  # never set: a pause that says what it is for
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        pause.wait(0.02)


def test_idle_uploads_are_ended_and_free_their_slots(start_server):
    server = start_server(limits=Limits(max_concurrent_uploads=2, upload_idle_seconds=1.0))
    release = threading.Event()
    with open_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        try:
            silent = held_upload(stub, release)
            chatty = held_upload(stub, release, empty_every=0.1)  # empty messages only
            wait_until(lambda: len(stub.ListJobs(sales_pb2.ListJobsRequest()).jobs) == 2,
                       what="both uploads starting")
            # Both slots are held: a real upload is refused at once, with a sentence...
            busy = rpc_error(upload, stub, SALES)
            assert busy.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "2 files are already being processed" in busy.details()
            # ...until the idle ones are ended, about a second later.
            for call in (silent, chatty):
                error = call.exception(timeout=20)
                assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                assert error.details() == ("No data arrived for 1 seconds, so the upload was "
                                           "ended. Send the file again.")
            job = upload(stub, SALES)
            assert totals(job) == [("Food", 4), ("Toys", 3)]
        finally:
            release.set()
        records = [wait_for_job(stub, listed.job_id) for listed in
                   stub.ListJobs(sales_pb2.ListJobsRequest()).jobs if listed.filename == "idle.csv"]
        assert [(r.state, r.error, r.rows_processed, r.department_count) for r in records] == [
            (sales_pb2.JOB_STATE_FAILED, "No data arrived for 1 seconds, so the upload was "
                                         "ended. Send the file again.", 0, 0)] * 2
        assert all(r.bytes_received == 20 for r in records)


def test_a_slow_but_steady_upload_is_not_idle(start_server):
    """Bytes every 0.3 s for 2 s keep an upload alive under a 1 s idle timeout."""
    server = start_server(limits=Limits(upload_idle_seconds=1.0))
    pause = threading.Event()

    def requests():
        yield sales_pb2.UploadChunk(data=b"Department Name,Number of Sales\n", filename="s.csv")
        for _ in range(7):
            pause.wait(0.3)
            yield sales_pb2.UploadChunk(data=b"Toys,1\n")

    with open_channel(server.address) as channel:
        job = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV(requests(), timeout=30)
    assert totals(job) == [("Toys", 7)]


def test_a_cancelled_upload_gives_its_slot_back_without_waiting_for_its_end(start_server):
    server = start_server(limits=Limits(max_concurrent_uploads=1))
    release = threading.Event()
    with open_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        try:
            held = held_upload(stub, release)
            wait_until(lambda: stub.ListJobs(sales_pb2.ListJobsRequest()).jobs,
                       what="the upload starting")
            held.cancel()
            # The slot is free as soon as the server sees the cancel: a bounded retry.
            deadline = time.monotonic() + 5
            while True:
                try:
                    assert totals(upload(stub, SALES)) == [("Food", 4), ("Toys", 3)]
                    break
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert time.monotonic() < deadline, "the slot was never given back"
        finally:
            release.set()
        cancelled = [job for job in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
                     if job.filename == "idle.csv"]
        record = wait_for_job(stub, cancelled[0].job_id)
        assert (record.state, record.rows_rejected, record.department_count) == (
            sales_pb2.JOB_STATE_CANCELLED, 0, 0)


def test_a_number_of_thousands_of_digits_is_a_rejected_row(stub):
    job = upload(stub, b"Department Name,Number of Sales\nToys,1\nToys," + b"7" * 5000 + b"\n")
    assert job.state == sales_pb2.JOB_STATE_COMPLETED
    assert totals(job) == [("Toys", 1)]
    [sample] = job.rejected_samples
    assert sample.line == 3 and sample.reason.startswith("Number of Sales 77777777777777777777...")
    assert "(5,000 characters) is too large" in sample.reason


def test_file_names_are_cut_to_255_characters_readably(stub):
    name = "report " + "x" * (7 << 20) + " march.csv"
    job = upload(stub, SALES, filename=name)
    assert len(job.filename) == 255
    assert job.filename.startswith("report xxx") and job.filename.endswith("x march.csv")
    assert "\u2026" in job.filename
    job = upload(stub, SALES, filename="two\nlines\x1b[31m.csv")
    assert job.filename == "two?lines?[31m.csv"
    assert len(stub.ListJobs(sales_pb2.ListJobsRequest()).SerializeToString()) < 4096


def raw_upload(channel, *messages: bytes):
    """An upload whose messages are the given bytes, as a client with another .proto (or a
    broken one) could send them."""
    call = channel.stream_unary(UPLOAD_METHOD, request_serializer=lambda data: data,
                                response_deserializer=sales_pb2.Job.FromString)
    return call(iter(messages), timeout=30)


@pytest.mark.parametrize("message", [
    b"\x0a\x05Toys,\x12\x03\xff\xfe\xfd",  # data "Toys,", then a filename that is not UTF-8
    b"\xff\xff\xff\xff",  # not protobuf
], ids=["filename not utf-8", "junk"])
def test_a_message_protobuf_cannot_read_is_invalid_argument(running_server, stub, message):
    with open_channel(running_server.address) as channel:
        error = rpc_error(raw_upload, channel, sales_pb2.UploadChunk(data=SALES).
                          SerializeToString(), message)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (f"A message of {len(message)} bytes could not be read as "
                               "sales.UploadChunk (a string field that is not UTF-8 text, or "
                               "bytes that are not protobuf). Is the client built from this "
                               "server's .proto files?")
    [job] = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert (job.state, job.error) == (sales_pb2.JOB_STATE_FAILED, error.details())
    with open_channel(running_server.address) as channel:
        status = channel.unary_unary("/sales.SalesService/GetJobStatus",
                                     request_serializer=lambda data: data)
        error = rpc_error(status, b"\x0a\x02\xff\xfe", timeout=10)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be read as sales.JobStatusRequest" in error.details()


@pytest.mark.parametrize("method, streams", [
    ("/grpc.health.v1.Health/Check", False), ("/grpc.health.v1.Health/Watch", False),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", True),
    ("/sales.SalesService/ListJobs", False)])
def test_junk_to_any_service_is_one_status_and_sentence(running_server, method, streams, caplog):
    """Health and reflection are open to anyone who can reach the port: junk sent to them is
    answered like junk sent to the sales service, with nothing in the log but a sentence."""
    with open_channel(running_server.address) as channel:
        # (Field 1 of ListJobsRequest is a number: bytes that are not UTF-8 are no fault there.)
        not_utf8 = () if method.endswith("ListJobs") else (
            (b"\x0a\x03\xff\xfe\xfd", grpc.StatusCode.INVALID_ARGUMENT),)
        for junk, code in (*not_utf8,
                           (b"\x0a" + b"\x80" * 11, grpc.StatusCode.INVALID_ARGUMENT),
                           (b"\x0a\x80\x80\x80\x05" + b"x" * (10 << 20),
                            grpc.StatusCode.RESOURCE_EXHAUSTED)):
            if streams:
                call = channel.stream_stream(method, request_serializer=lambda data: data)
                error = rpc_error(lambda: list(call(iter([junk]), timeout=10)))
            elif method.endswith("Watch"):
                call = channel.unary_stream(method, request_serializer=lambda data: data)
                error = rpc_error(lambda: list(call(junk, timeout=10)))
            else:
                call = channel.unary_unary(method, request_serializer=lambda data: data)
                error = rpc_error(call, junk, timeout=10)
            assert error.code() == code, error.details()
            assert error.details().startswith(f"A message of {len(junk):,} bytes ")
    assert "Traceback" not in caplog.text


def test_an_oversized_message_is_refused_and_recorded_as_such(running_server, stub):
    error = rpc_error(stub.UploadCSV, iter([sales_pb2.UploadChunk(data=b"x" * (16 << 20))]),
                      timeout=30)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.details() == ("A message of 16,777,221 bytes arrived; the largest this server "
                               "takes is 8,388,608 bytes. Send the file in smaller chunks "
                               "(64 KiB to 1 MiB is plenty).")
    [job] = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert (job.state, job.error) == (sales_pb2.JOB_STATE_FAILED, error.details())


def test_a_file_with_no_usable_row_fails_and_writes_nothing(running_server, stub):
    error = rpc_error(upload, stub, b"Department Name,Number of Sales\nToys,1.200\nFood,2.500\n")
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "No row of the file could be used: all 2 data rows were rejected, each for the same "
        'reason (first on line 2): Number of Sales "1.200" is written with a thousands '
        'separator ("."); write it without one: 1200.')
    [job] = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert (job.state, job.error, job.output_path) == (sales_pb2.JOB_STATE_FAILED,
                                                       error.details(), "")
    assert list(running_server.output_dir.iterdir()) == []


def modes(*paths) -> list[str]:
    return [oct(stat.S_IMODE(os.stat(path).st_mode)) for path in paths]


@pytest.mark.parametrize("private, folder, file", [(True, "0o700", "0o600"),
                                                   (False, "0o750", "0o640")])
def test_storage_is_private_unless_shared_with_the_group(tmp_path, private, folder, file):
    from server.app import ServerConfig, create_server

    storage = tmp_path / "storage"
    old_umask = os.umask(0o022)
    try:
        server, port = create_server("127.0.0.1:0", ServerConfig(storage_dir=storage,
                                                                 private_storage=private))
    finally:
        os.umask(old_umask)
    server.start()
    try:
        with open_channel(f"127.0.0.1:{port}") as channel:
            job = upload(sales_pb2_grpc.SalesServiceStub(channel),
                         b"Department Name,Number of Sales\nToys,1\nFood,x\n")
    finally:
        server.stop(grace=1.0)
    assert modes(storage, storage / "processed") == [folder] * 2
    assert modes(storage / "jobs.sqlite3", job.output_path, job.rejected_path) == [file] * 3


def serve(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0",
                           *arguments], capture_output=True, text=True, timeout=60)


def test_start_up_faults_each_have_their_sentence_and_exit_code(tmp_path):
    (tmp_path / "a file").write_text("not a folder")
    done = serve("--storage-dir", str(tmp_path / "s1"), "--output-dir", str(tmp_path / "a file"))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"Cannot write to the output folder {tmp_path / 'a file'}: ")

    cert, key, other_key = (tmp_path / name for name in ("cert.pem", "key.pem", "other.pem"))
    for path in (key, other_key):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", str(path), "-out", str(cert)],
                       check=True, capture_output=True)
    done = serve("--storage-dir", str(tmp_path / "s2"), "--tls-cert", str(cert), "--tls-key",
                 str(key))
    assert done.returncode == 4
    assert done.stderr.strip() == (f"The TLS private key {key} does not belong to the "
                                   f"certificate {cert}.")
    done = serve("--storage-dir", str(tmp_path / "s2"), "--tls-cert", str(tmp_path / "a file"),
                 "--tls-key", str(other_key))
    assert done.returncode == 4
    assert done.stderr.strip() == (f"The TLS certificate {tmp_path / 'a file'} is not a PEM "
                                   "certificate (a text file starting with -----BEGIN "
                                   "CERTIFICATE-----).")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--port",
                               str(port), "--storage-dir", str(tmp_path / "s3")],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 5
    assert done.stderr.strip() == (f"Cannot listen on 127.0.0.1:{port}: another program is "
                                   "already listening on that port.")


def test_a_history_with_damaged_pages_is_refused_at_start(tmp_path, start_server):
    storage = tmp_path / "storage"
    server = start_server(storage)
    with open_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        for n in range(30):
            upload(stub, SALES * 50, filename=f"{n:04d}" * 200)
    server.stop()
    history = storage / "jobs.sqlite3"
    with sqlite3.connect(history) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(history.read_bytes())
    assert len(data) > 3 * 4096
    data[4096 + 100:len(data) - 100] = b"\x5a" * (len(data) - 4096 - 200)  # header kept
    history.write_bytes(bytes(data))
    done = serve("--storage-dir", str(storage))
    assert done.returncode == 3 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"The job history {history} is damaged or unreadable (")
    assert done.stderr.strip().endswith("It was left as it is: move it away (or restore a "
                                        "backup) to start with an empty history.")
    assert history.read_bytes() == bytes(data)


def test_a_history_removed_while_serving_is_noticed(tmp_path, start_server):
    storage = tmp_path / "storage"
    server = start_server(storage)
    with open_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        upload(stub, SALES)
        before = sorted(server.output_dir.iterdir())
        for leftover in storage.glob("jobs.sqlite3*"):
            leftover.unlink()
        message = (f"The job history {storage / 'jobs.sqlite3'} was removed or replaced while "
                   "the server was running, so jobs can no longer be recorded. Restore it, then "
                   "restart the server.")
        for call in (lambda: upload(stub, SALES),
                     lambda: stub.ListJobs(sales_pb2.ListJobsRequest(), timeout=10)):
            error = rpc_error(call)
            assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, message)
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert sorted(server.output_dir.iterdir()) == before  # the refused upload left nothing


def test_a_link_planted_in_a_shared_output_folder_is_not_followed(start_server, tmp_path):
    """Another local user who can write to the output folder plants links at a job's
    temporary names while it runs: the job's bytes go to its own file, the links' targets stay
    as they were."""
    storage, shared = tmp_path / "storage", tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    victim = tmp_path / "victim.txt"
    victim.write_text("IMPORTANT DATA")
    from server.app import ServerConfig, create_server
    server, port = create_server("127.0.0.1:0", ServerConfig(storage_dir=storage,
                                                             output_dir=shared))
    server.start()
    release = threading.Event()
    try:
        with open_channel(f"127.0.0.1:{port}") as channel:
            stub = sales_pb2_grpc.SalesServiceStub(channel)

            def requests():
                yield sales_pb2.UploadChunk(data=b"Department Name,Number of Sales\nToys,5\n")
                release.wait(30)
                yield sales_pb2.UploadChunk(data=b"Books,x\n")

            call = stub.UploadCSV.future(requests(), timeout=60)
            job_id = dict(call.initial_metadata())["job-id"]
            for name in (f".{job_id}.csv.tmp", f".{job_id}.rejected.csv.tmp"):
                (shared / name).symlink_to(victim)
            release.set()
            job = call.result()
    finally:
        release.set()
        server.stop(grace=1.0)
    assert victim.read_text() == "IMPORTANT DATA"
    assert not os.path.islink(job.output_path) and not os.path.islink(job.rejected_path)
    assert open(job.output_path).read() == "Department Name,Total Number of Sales\nToys,5\n"


@pytest.mark.parametrize("column, value", [
    ("state", 9), ("created_at", "yesterday"), ("department_names", b"junk"),
    ("department_totals", b"\x10\x00\x00\x00\x00\x00\x00\x00junk"),
    ("rejected_samples", "not json"), ("department_codec", "lz4")])
def test_a_damaged_history_entry_is_told_not_thrown(start_server, tmp_path, column, value):
    storage = tmp_path / "storage"
    server = start_server(storage)
    with open_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        job = upload(stub, SALES)
        other = upload(stub, SALES)
    server.stop()
    with sqlite3.connect(storage / "jobs.sqlite3") as db:
        db.execute(f"UPDATE jobs SET {column} = ? WHERE job_id = ?", (value, job.job_id))
    server = start_server(storage)
    with open_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        listed = {j.job_id: j for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs}
        status = stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id))
        assert totals(stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=other.job_id))) == \
            [("Food", 4), ("Toys", 3)]
    damaged = "This job's entry in the history is damaged"
    assert status.state == sales_pb2.JOB_STATE_FAILED and status.error.startswith(damaged)
    assert not status.departments
    if column in ("state", "created_at"):
        assert listed[job.job_id].error.startswith(damaged)


def test_flags_out_of_range_are_refused_before_start(tmp_path):
    for arguments, message in (
            (["--port", "99999"], "argument --port: expected a number from 0 to 65,535"),
            (["--max-concurrent-uploads", "0"], "expected a number of at least 1, not 0"),
            (["--token", ""], "--token (SALES_TOKEN) is empty, which would let anyone in")):
        done = serve("--storage-dir", str(tmp_path), *arguments)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
