"""SalesService through the real server on 127.0.0.1:0 and the real stub."""

import filecmp
import ipaddress
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import ROOT, rpc_error, totals, upload, wait_for_job
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import open_channel
from server.limits import Limits

SALES = (b"Date,Department Name,Number of Sales\n"
         b"2024-01-01,Electronics,12\n2024-01-02,Clothing,5\n2024-01-03,Electronics,-2\n"
         b"2024-01-04,clothing,1\n2024-01-05,Toys,abc\n")


def test_upload_then_status_and_history(stub, running_server):
    job = upload(stub, SALES, filename="march.csv")
    assert job.state == sales_pb2.JOB_STATE_COMPLETED
    assert len(job.job_id) == 32 and int(job.job_id, 16) >= 0
    assert totals(job) == [("Clothing", 5), ("clothing", 1), ("Electronics", 10)]
    assert (job.rows_processed, job.rows_rejected, job.bytes_received) == (4, 1, len(SALES))
    assert [(r.line, r.reason) for r in job.rejected_samples] == [
        (6, 'Number of Sales "abc" is not a whole number.')]
    assert job.filename == "march.csv"
    output = Path(job.output_path)
    assert output.is_absolute() and output == running_server.output_dir / f"{job.job_id}.csv"
    assert output.read_text(encoding="utf-8") == (
        "Department Name,Total Number of Sales\nClothing,5\nclothing,1\nElectronics,10\n")
    rejected = Path(job.rejected_path)
    assert rejected == running_server.output_dir / f"{job.job_id}.rejected.csv"
    assert rejected.read_text(encoding="utf-8").splitlines() == [
        "Line,Reason,Raw Row", '6,"Number of Sales ""abc"" is not a whole number.",'
                               '"2024-01-05,Toys,abc"']

    status = stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id))
    assert status == job
    second = upload(stub, b"Department Name,Number of Sales\nA,1\n")
    assert second.rejected_path == ""
    assert sorted(p.name for p in running_server.output_dir.iterdir()) == sorted(
        [f"{job.job_id}.csv", f"{job.job_id}.rejected.csv", f"{second.job_id}.csv"])
    listed = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert [j.job_id for j in listed] == [second.job_id, job.job_id]
    assert listed[1].department_count == 3 and not listed[1].departments
    assert listed[1].state == sales_pb2.JOB_STATE_COMPLETED
    assert listed[1].created_at.ToNanoseconds() <= listed[0].created_at.ToNanoseconds()


def test_job_id_is_sent_before_the_upload_ends(stub):
    release = threading.Event()

    def held_stream():
        yield sales_pb2.UploadChunk(data=SALES[:20], filename="slow.csv")
        release.wait(30)
        yield sales_pb2.UploadChunk(data=SALES[20:])

    call = stub.UploadCSV.future(held_stream(), timeout=60)
    job_id = dict(call.initial_metadata())["job-id"]
    running = stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job_id))
    assert running.state == sales_pb2.JOB_STATE_RUNNING
    assert running.filename == "slow.csv"
    release.set()
    assert call.result().job_id == job_id


def test_formula_names_are_neutralised_in_the_file_only(stub):
    job = upload(stub, b"Department Name,Number of Sales\n=1+2,1\n@cmd,2\n-x,3\n+y,4\nok,5\n"
                       b"'=1+2,6\n'ok,7\n")
    assert [d.department for d in job.departments] == ["'=1+2", "'ok", "+y", "-x", "=1+2",
                                                       "@cmd", "ok"]
    lines = Path(job.output_path).read_text().splitlines()[1:]
    assert lines == ["''=1+2,6", "''ok,7", "'+y,4", "'-x,3", "'=1+2,1", "'@cmd,2", "ok,5"]
    # Each name has its own line, and dropping one leading quote gives the name back.
    assert [line.rsplit(",", 1)[0].removeprefix("'") for line in lines if line[0] == "'"] == \
        ["'=1+2", "'ok", "+y", "-x", "=1+2", "@cmd"]


@pytest.mark.parametrize("data,message", [
    (b"", "The file is empty."),
    (b"Department Name,Number of Sales\n", "The file has a header row but no data rows."),
    (b"Date,Dept,Sales\n1,2,3\n", 'The header row (line 1) has no "Department Name" and '
     '"Number of Sales" columns. Columns found: "Date", "Dept", "Sales".'),
    (b"\x7fELF\x02\x01\x01\x00\x00", "This file holds data that is not text (from character 8 on), so it is "
     "not a CSV file. If a program made it, save or export it as CSV."),
    (b"Department Name,Number of Sales\nT,9223372036854775807\nT,9\n", 'The total for department '
     '"T" comes to 9,223,372,036,854,775,816, beyond the largest total that can be kept '
     '(9,223,372,036,854,775,807).'),
])
def test_unprocessable_file_is_invalid_argument_and_a_failed_job(stub, running_server, data,
                                                                  message):
    error = rpc_error(upload, stub, data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == message
    [job] = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert job.state == sales_pb2.JOB_STATE_FAILED
    assert job.error == message
    assert list(running_server.output_dir.iterdir()) == []


def test_unknown_and_malformed_job_ids(stub):
    error = rpc_error(stub.GetJobStatus, sales_pb2.JobStatusRequest(job_id="0" * 32))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = rpc_error(stub.GetJobStatus, sales_pb2.JobStatusRequest(job_id="../../etc/passwd"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_eight_uploads_at_once(stub):
    files = []
    for n in range(8):
        rows = "".join(f"d,Dept {i % (n + 2)},{n + 1}\n" for i in range(20_000 + n))
        files.append((b"Date,Department Name,Number of Sales\n" + rows.encode(), n))
    with futures.ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(lambda item: upload(stub, item[0], filename=f"f{item[1]}.csv"),
                             files))
    for job, (_, n) in zip(jobs, files):
        counts = {}
        for i in range(20_000 + n):
            counts[f"Dept {i % (n + 2)}"] = counts.get(f"Dept {i % (n + 2)}", 0) + n + 1
        assert job.state == sales_pb2.JOB_STATE_COMPLETED
        assert dict(totals(job)) == counts
        assert job.filename == f"f{n}.csv"
    assert len({job.output_path for job in jobs}) == 8


def test_large_messages_give_the_same_totals(stub):
    # 1 MB messages fill a block at a time, so that blocks are aggregated while the next fill.
    rows = b"".join(b"2024-01-01,Dept %d,%d\n" % (i % 7, i % 100) for i in range(1_500_000))
    job = upload(stub, b"Date,Department Name,Number of Sales\n" + rows, size=1 << 20)
    expected = {}
    for i in range(1_500_000):
        expected[f"Dept {i % 7}"] = expected.get(f"Dept {i % 7}", 0) + i % 100
    assert dict(totals(job)) == expected
    assert job.rows_processed == 1_500_000


def test_cancelled_upload_leaves_a_cancelled_job_and_no_files(stub, running_server):
    release = threading.Event()
    sent = []

    def stream():
        yield sales_pb2.UploadChunk(data=SALES, filename="c.csv")
        for _ in range(200):  # 1.6 MB of rows, then wait to be cancelled
            sent.append(1)
            yield sales_pb2.UploadChunk(data=b"d,Toys,1\nd,Food,2\n" * 455)
        release.wait(30)

    call = stub.UploadCSV.future(stream(), timeout=60)
    job_id = dict(call.initial_metadata())["job-id"]
    assert call.cancel()
    release.set()
    with pytest.raises(grpc.FutureCancelledError):
        call.result()
    job = wait_for_job(stub, job_id)
    assert job.state == sales_pb2.JOB_STATE_CANCELLED
    assert job.output_path == "" and not job.departments
    assert list(running_server.output_dir.iterdir()) == []
    assert upload(stub, SALES).state == sales_pb2.JOB_STATE_COMPLETED


def test_history_survives_a_restart(start_server, tmp_path):
    first = start_server(tmp_path / "shared")
    with open_channel(first.address) as channel:
        job = upload(sales_pb2_grpc.SalesServiceStub(channel), SALES)
    first.stop()
    second = start_server(tmp_path / "shared")
    with open_channel(second.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        assert stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id)) == job
        assert [j.job_id for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs] == [job.job_id]


def test_a_history_from_before_compressed_totals_still_reads(start_server, tmp_path):
    """Version 1 kept department blobs uncompressed; opening it brings the schema up to date
    and its jobs read back as they were."""
    import sqlite3

    import pyarrow

    from server.sqlite_store import DATABASE_NAME

    def _decompressed(blob: bytes) -> bytes:  # version 2's blobs: raw length, then zstd
        return pyarrow.Codec("zstd").decompress(blob[8:], int.from_bytes(blob[:8], "little"),
                                                asbytes=True)

    first = start_server(tmp_path / "old")
    with open_channel(first.address) as channel:
        job = upload(sales_pb2_grpc.SalesServiceStub(channel), SALES)
    first.stop()
    with sqlite3.connect(tmp_path / "old" / DATABASE_NAME) as db:  # back to version 1
        names, totals = db.execute("SELECT department_names, department_totals FROM jobs").fetchone()
        db.execute("UPDATE jobs SET department_names = ?, department_totals = ?",
                   (_decompressed(names), _decompressed(totals)))
        db.execute("ALTER TABLE jobs DROP COLUMN department_codec")
        db.execute("ALTER TABLE jobs DROP COLUMN server_id")  # version 3's, for leases
        db.execute("DROP TABLE servers")
        db.execute("DROP TABLE settings")
        db.execute("PRAGMA user_version = 1")
    db.close()
    second = start_server(tmp_path / "old")
    with open_channel(second.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        assert stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id)) == job
        again = upload(stub, SALES)
        assert stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=again.job_id)) == again


def test_a_second_server_cannot_share_the_storage(running_server):
    from server.app import ServerStartError, create_server
    with pytest.raises(ServerStartError, match="Another server is already using the storage"):
        create_server("127.0.0.1:0", running_server.config)


def test_job_cut_off_by_killing_the_server_is_failed_after_restart(serve_process, start_server,
                                                                     tmp_path):
    storage = tmp_path / "killed"
    serve = serve_process(storage)
    release = threading.Event()

    def stream():
        yield sales_pb2.UploadChunk(data=SALES * 1000, filename="big.csv")
        release.wait(30)

    with open_channel(serve.address) as channel:
        call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV.future(stream(), timeout=60)
        job_id = dict(call.initial_metadata())["job-id"]
        serve.process.send_signal(signal.SIGKILL)
        serve.process.wait(timeout=30)
        release.set()
        with pytest.raises(grpc.RpcError):
            call.result()
    restarted = start_server(storage)
    with open_channel(restarted.address) as channel:
        job = sales_pb2_grpc.SalesServiceStub(channel).GetJobStatus(
            sales_pb2.JobStatusRequest(job_id=job_id))
    assert job.state == sales_pb2.JOB_STATE_FAILED
    assert "interrupted by a server restart" in job.error
    assert [p.name for p in restarted.output_dir.iterdir()] == []


@pytest.mark.parametrize("filename", ["../../escape.csv", "/tmp/abs.csv", "..", "a/b\\c.csv", ""])
def test_filename_never_decides_where_files_go(stub, running_server, tmp_path, filename):
    job = upload(stub, SALES, filename=filename)
    assert job.filename == filename
    assert Path(job.output_path).parent == running_server.output_dir
    assert Path(job.output_path).name == f"{job.job_id}.csv"
    assert not (tmp_path / "escape.csv").exists() and not Path("/tmp/abs.csv").exists()
    assert sorted(p.name for p in running_server.output_dir.iterdir()) == sorted(
        [f"{job.job_id}.csv", f"{job.job_id}.rejected.csv"])


def test_serve_listens_on_loopback_only_by_default(serve_process):
    serve = serve_process()
    listening = [c.laddr for c in psutil.Process(serve.process.pid).net_connections("inet")
                 if c.status == psutil.CONN_LISTEN]
    assert listening and all(_is_loopback(address.ip) for address in listening), listening


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # gRPC's dual-stack ::ffff:127.0.0.1
    return (mapped or address).is_loopback


def test_serve_stops_cleanly_on_sigterm(serve_process):
    serve = serve_process()
    serve.process.send_signal(signal.SIGTERM)
    try:
        code = serve.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        serve.process.kill()
        pytest.fail(f"serve did not stop on SIGTERM; its log:\n{serve.process.stderr.read()}")
    assert code == 0


def test_health_and_reflection(running_server, channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "sales.SalesService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    [reply] = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
    names = {s.name for s in reply.list_services_response.service}
    assert {"sales.SalesService", "grpc.health.v1.Health"} <= names


def test_concurrency_limit_refuses_at_once(start_server):
    running = start_server(limits=Limits(max_concurrent_uploads=1))
    release = threading.Event()

    with open_channel(running.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        call = stub.UploadCSV.future(held(release), timeout=60)
        call.initial_metadata()
        error = rpc_error(upload, stub, SALES)
        release.set()
        assert call.result().state == sales_pb2.JOB_STATE_COMPLETED
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == ("1 file is already being processed, the most this server takes "
                                   "at once. Try again in a moment.")
        assert upload(stub, SALES).state == sales_pb2.JOB_STATE_COMPLETED


def test_size_and_department_limits(start_server):
    running = start_server(limits=Limits(max_upload_bytes=1000, max_departments=3,
                                         max_field_bytes=200))
    with open_channel(running.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        error = rpc_error(upload, stub, SALES * 20, 100)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "larger than 1.0 KB" in error.details()
        error = rpc_error(upload, stub, b"Department Name,Number of Sales\na,1\nb,1\nc,1\nd,1\n")
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "more than 3 different departments" in error.details()
        error = rpc_error(upload, stub, b"Department Name,Number of Sales\n" + b"x" * 300 + b",1\n")
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == ("The file has a row longer than 200 bytes, the longest "
                                   "accepted. Is a quote left open?")
        states = [j.state for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs]
        assert states == [sales_pb2.JOB_STATE_FAILED] * 3
        assert list(running.output_dir.iterdir()) == []
        assert upload(stub, SALES).state == sales_pb2.JOB_STATE_COMPLETED


def test_generated_code_matches_the_proto():
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "generate_proto.py"), "--out", out],
                       check=True)
        for name in ("sales_pb2.py", "sales_pb2.pyi", "sales_pb2_grpc.py"):
            assert filecmp.cmp(Path(out) / "salesapi" / name, ROOT / "salesapi" / name,
                               shallow=False), f"salesapi/{name} is stale: run scripts/generate_proto.py"


def test_names_with_line_breaks_and_quotes_are_quoted_in_the_output(stub):
    job = upload(stub, b'Department Name,Number of Sales\n"cr\rinside",1\n"lf\ninside",2\n'
                       b'"a ""quote""",3\n"semi,colon",4\n')
    with open(job.output_path, encoding="utf-8", newline="") as handle:
        assert handle.read() == ('Department Name,Total Number of Sales\n"a ""quote""",3\n'
                                 '"cr\rinside",1\n"lf\ninside",2\n"semi,colon",4\n')


def held(release: threading.Event):
    """An upload's request stream that sends the file, then waits for release before it ends."""
    yield sales_pb2.UploadChunk(data=SALES, filename="held.csv")
    release.wait(30)


def test_an_upload_cut_off_by_a_stop_is_failed_not_cancelled(start_server, tmp_path):
    running = start_server(tmp_path / "stopping")
    release = threading.Event()

    with open_channel(running.address) as channel:
        call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV.future(held(release), timeout=60)
        job_id = dict(call.initial_metadata())["job-id"]
        running.server.stop(grace=0.3)
        release.set()
        with pytest.raises(grpc.RpcError) as stopped:
            call.result()
    # The client hears why, in the server's words (not gRPC's "Cancelling all calls").
    assert stopped.value.code() == grpc.StatusCode.UNAVAILABLE
    assert stopped.value.details() == ("The server was stopped during the upload; please "
                                       "upload the file again.")
    restarted = start_server(tmp_path / "stopping")
    with open_channel(restarted.address) as channel:
        job = sales_pb2_grpc.SalesServiceStub(channel).GetJobStatus(
            sales_pb2.JobStatusRequest(job_id=job_id))
    assert job.state == sales_pb2.JOB_STATE_FAILED
    assert job.error == "The server was stopped during the upload; please upload the file again."


def test_an_upload_that_ends_within_the_grace_of_a_stop_gets_its_job(start_server, tmp_path):
    running = start_server(tmp_path / "graceful")
    release = threading.Event()

    with open_channel(running.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        call = stub.UploadCSV.future(held(release), timeout=60)
        assert dict(call.initial_metadata())["job-id"]
        stopping = threading.Thread(target=running.server.stop, kwargs={"grace": 30})
        stopping.start()
        # Once health says NOT_SERVING, or new calls are refused, the stop has begun; the
        # upload then ends on its own.
        health = health_pb2_grpc.HealthStub(channel)

        def stop_has_begun() -> bool:
            try:
                reply = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            except grpc.RpcError:
                return True
            return reply.status != health_pb2.HealthCheckResponse.SERVING

        while not stop_has_begun():
            release.wait(0.01)
        release.set()
        job = call.result()
        stopping.join(60)
    assert job.state == sales_pb2.JOB_STATE_COMPLETED
    assert dict(totals(job)) == {"Electronics": 10, "Clothing": 5, "clothing": 1}
