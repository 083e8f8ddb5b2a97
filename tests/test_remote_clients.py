"""Results for clients on other machines, through the real server and a plain channel with gRPC's
default limits (4 MB replies): bounded replies, paging, downloads, deleting, retention."""

import subprocess
import sys

import grpc
import pytest

from conftest import ROOT, rpc_error, upload
from salesapi import sales_pb2, sales_pb2_grpc

MANY = 300_000


@pytest.fixture
def plain_stub(running_server):
    """A stub on a channel with gRPC's defaults, as any client in any language has."""
    with grpc.insecure_channel(running_server.address) as channel:
        yield sales_pb2_grpc.SalesServiceStub(channel)


def many_departments_file(count: int = MANY) -> bytes:
    rows = "".join(f"2024-01-01,Department {n:06d} of the big store,{n % 97}\n"
                   for n in range(count))
    return ("Date,Department Name,Number of Sales\n" + rows).encode()


def pages(stub, job_id: str, page_size: int) -> list[sales_pb2.ListDepartmentsResponse]:
    replies, token = [], ""
    for _ in range(MANY + 2):  # bounded: one page per department at the most
        reply = stub.ListDepartments(sales_pb2.ListDepartmentsRequest(
            job_id=job_id, page_size=page_size, page_token=token), timeout=60)
        replies.append(reply)
        token = reply.next_page_token
        if not token:
            return replies
    raise AssertionError("paging never ended")


def test_300000_departments_through_default_limits(running_server, plain_stub):
    data = many_departments_file()
    job = plain_stub.UploadCSV(iter([sales_pb2.UploadChunk(data=data[i:i + (1 << 20)],
                                                           filename="big.csv")
                                     for i in range(0, len(data), 1 << 20)]), timeout=120)
    assert job.state == sales_pb2.JOB_STATE_COMPLETED and job.department_count == MANY
    assert 0 < len(job.departments) < MANY and not job.departments_complete
    assert job.ByteSize() <= 4 * 1024 * 1024
    status = plain_stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id), timeout=30)
    assert list(status.departments) == list(job.departments)
    [listed] = plain_stub.ListJobs(sales_pb2.ListJobsRequest(), timeout=30).jobs
    assert listed.department_count == MANY and not listed.departments_complete

    expected = [(f"Department {n:06d} of the big store", n % 97) for n in range(MANY)]
    for size in (1000, 0):  # 0: the server's default
        replies = pages(plain_stub, job.job_id, size)
        got = [(d.department, d.total_sales) for r in replies for d in r.departments]
        assert got == expected
        assert all(r.ByteSize() <= 4 * 1024 * 1024 for r in replies)
    # The whole output file, byte for byte, through the stream.
    chunks = list(plain_stub.DownloadOutput(sales_pb2.DownloadOutputRequest(job_id=job.job_id),
                                            timeout=60))
    assert max(len(c.data) for c in chunks) <= 64 * 1024
    with open(job.output_path, "rb") as output:
        assert b"".join(c.data for c in chunks) == output.read()


@pytest.mark.parametrize("page_size", [1, 7, 1000, 0])
def test_paging_returns_every_department_once_in_order(plain_stub, page_size):
    data = ("Department Name,Number of Sales\n"
            + "".join(f"D{n:03d},{n}\n" for n in range(250))).encode()
    job = upload(plain_stub, data)
    replies = pages(plain_stub, job.job_id, page_size)
    got = [(d.department, d.total_sales) for r in replies for d in r.departments]
    assert got == [(f"D{n:03d}", n) for n in range(250)]
    if page_size:
        assert [len(r.departments) for r in replies][:-1] == [page_size] * (len(replies) - 1)


def test_names_of_100_kb_fit_the_replies(plain_stub):
    names = [f"{n:02d}" + "n" * 100_000 for n in range(60)]  # 6 MB of names
    data = ("Department Name,Number of Sales\n"
            + "".join(f"{name},{n}\n" for n, name in enumerate(names))).encode()
    job = upload(plain_stub, data)
    assert job.department_count == 60 and not job.departments_complete
    got = [d.department for r in pages(plain_stub, job.job_id, 0) for d in r.departments]
    assert got == names


def test_paging_refuses_what_it_did_not_give(plain_stub):
    job = upload(plain_stub, b"Department Name,Number of Sales\nA,1\nB,2\nC,3\n")
    first = plain_stub.ListDepartments(sales_pb2.ListDepartmentsRequest(job_id=job.job_id,
                                                                        page_size=1))
    other = upload(plain_stub, b"Department Name,Number of Sales\nA,1\nB,2\nC,3\n")
    import base64
    forged = base64.urlsafe_b64encode(f"p1:{job.job_id}:2".encode()).decode()
    for token in ("junk", "cDE6eDox", first.next_page_token + "x", forged):
        error = rpc_error(plain_stub.ListDepartments, sales_pb2.ListDepartmentsRequest(
            job_id=job.job_id, page_token=token))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = rpc_error(plain_stub.ListDepartments, sales_pb2.ListDepartmentsRequest(
        job_id=other.job_id, page_token=first.next_page_token))
    assert error.details() == ("page_token is not one the service gave for this job's "
                               "departments; start again with an empty page_token.")
    error = rpc_error(plain_stub.ListDepartments, sales_pb2.ListDepartmentsRequest(
        job_id=job.job_id, page_size=-1))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    error = rpc_error(plain_stub.ListDepartments, sales_pb2.ListDepartmentsRequest(job_id=""))
    assert error.details() == ("The request names no job: job_id (field 1) is empty. (A client "
                               "that maps field names to camelCase sends it as jobId.)")


def test_downloads_are_the_files_on_disk(plain_stub):
    job = upload(plain_stub, b"Department Name,Number of Sales\n=A,1\nB,x\nB,2\n")
    for kind, path in ((sales_pb2.OUTPUT_KIND_TOTALS, job.output_path),
                       (sales_pb2.OUTPUT_KIND_REJECTED_ROWS, job.rejected_path)):
        chunks = plain_stub.DownloadOutput(sales_pb2.DownloadOutputRequest(job_id=job.job_id,
                                                                           kind=kind))
        with open(path, "rb") as file:
            assert b"".join(c.data for c in chunks) == file.read()
    clean = upload(plain_stub, b"Department Name,Number of Sales\nA,1\n")
    error = rpc_error(lambda: list(plain_stub.DownloadOutput(sales_pb2.DownloadOutputRequest(
        job_id=clean.job_id, kind=sales_pb2.OUTPUT_KIND_REJECTED_ROWS))))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND, f"Job {clean.job_id} has no rejected-rows file: no row was "
                                   "rejected.")
    error = rpc_error(lambda: list(plain_stub.DownloadOutput(sales_pb2.DownloadOutputRequest(
        job_id="0" * 32))))
    assert error.code() == grpc.StatusCode.NOT_FOUND


def test_a_running_job_has_nothing_to_download_or_delete(plain_stub):
    import threading
    release = threading.Event()

    def requests():
        yield sales_pb2.UploadChunk(data=b"Department Name,Number of Sales\nA,1\n")
        release.wait(30)

    call = plain_stub.UploadCSV.future(requests(), timeout=60)
    try:
        job_id = dict(call.initial_metadata())["job-id"]
        for rpc in (lambda: list(plain_stub.DownloadOutput(
                        sales_pb2.DownloadOutputRequest(job_id=job_id))),
                    lambda: plain_stub.DeleteJob(sales_pb2.DeleteJobRequest(job_id=job_id)),
                    lambda: plain_stub.ListDepartments(
                        sales_pb2.ListDepartmentsRequest(job_id=job_id))):
            error = rpc_error(rpc)
            assert (error.code(), error.details()) == (
                grpc.StatusCode.FAILED_PRECONDITION,
                f"Job {job_id} is still running; ask again once it has ended.")
    finally:
        release.set()
    assert call.result().state == sales_pb2.JOB_STATE_COMPLETED


def test_deleting_a_job_removes_its_files_and_entry(running_server, plain_stub):
    job = upload(plain_stub, b"Department Name,Number of Sales\nA,1\nB,x\n")
    deleted = plain_stub.DeleteJob(sales_pb2.DeleteJobRequest(job_id=job.job_id))
    assert deleted.job_id == job.job_id and deleted.state == sales_pb2.JOB_STATE_COMPLETED
    assert list(deleted.departments) == list(job.departments)
    assert list(running_server.output_dir.iterdir()) == []
    for rpc in (lambda: plain_stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id)),
                lambda: plain_stub.DeleteJob(sales_pb2.DeleteJobRequest(job_id=job.job_id))):
        assert rpc_error(rpc).code() == grpc.StatusCode.NOT_FOUND
    assert not plain_stub.ListJobs(sales_pb2.ListJobsRequest()).jobs


def test_keep_days_removes_old_jobs_at_start(start_server, tmp_path):
    from server.app import ServerConfig, create_server

    storage = tmp_path / "storage"
    first = start_server(storage)
    with grpc.insecure_channel(first.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        old = upload(stub, b"Department Name,Number of Sales\nA,1\n")
    first.stop()
    # Two days pass for the first job: its record says it ended then.
    import sqlite3
    with sqlite3.connect(storage / "jobs.sqlite3") as db:
        db.execute("UPDATE jobs SET finished_at = finished_at - 2 * 86400")
    server, port = create_server("127.0.0.1:0", ServerConfig(storage_dir=storage, keep_days=1))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = sales_pb2_grpc.SalesServiceStub(channel)
            assert not stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
            new = upload(stub, b"Department Name,Number of Sales\nA,1\n")
            assert [j.job_id for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs] == \
                [new.job_id]
    finally:
        server.stop(grace=1.0)
    assert not (storage / "processed" / f"{old.job_id}.csv").exists()


def test_health_with_a_token_through_a_descriptor_based_client(serve_process, tmp_path):
    """As grpcurl does it: the method is found through reflection, then called with a message
    built from the descriptor; no token needed for either."""
    from google.protobuf import descriptor_pool, message_factory
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import \
        ProtoReflectionDescriptorDatabase

    serve = serve_process(tmp_path / "s", "--token", "secret-token")
    with grpc.insecure_channel(serve.address) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        method = pool.FindServiceByName("grpc.health.v1.Health").FindMethodByName("Check")
        request = message_factory.GetMessageClass(method.input_type)()
        reply_class = message_factory.GetMessageClass(method.output_type)
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=reply_class.FromString)
        assert check(request, timeout=10).status == 1  # SERVING


def test_the_command_line_from_another_folder(serve_process, tmp_path):
    """jobs, download and delete against a server whose files are not where the client runs."""
    serve = serve_process(tmp_path / "server storage")
    here = tmp_path / "client"
    here.mkdir()
    (here / "march.csv").write_text("Department Name,Number of Sales\nToys,5\nFood,x\n=Sum,2\n")

    def run(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "main.py"), *arguments, "--server",
                               serve.address], capture_output=True, text=True, timeout=60,
                              cwd=here)

    done = run("upload", "march.csv", "--save", "totals.csv", "--save-rejected", "bad.csv")
    assert done.returncode == 0, done.stderr
    assert (here / "totals.csv").read_text() == (
        "Department Name,Total Number of Sales\n'=Sum,2\nToys,5\n")
    assert (here / "bad.csv").read_text().startswith("Line,Reason,Raw Row\n3,")
    job_id = next(line.split()[1] for line in done.stdout.splitlines()
                  if line.startswith("Job "))
    done = run("jobs")
    assert done.returncode == 0 and job_id in done.stdout and "march.csv" in done.stdout
    done = run("download", job_id, "-o", "again.csv")
    assert done.returncode == 0, done.stderr
    assert (here / "again.csv").read_bytes() == (here / "totals.csv").read_bytes()
    done = run("download", job_id, "-o", "rej.csv", "--rejected")
    assert (here / "rej.csv").read_bytes() == (here / "bad.csv").read_bytes()
    done = run("delete", job_id)
    assert done.returncode == 0 and f"Deleted job {job_id}" in done.stdout
    done = run("download", job_id, "-o", "gone.csv")
    assert done.returncode == 1 and done.stderr == f"There is no job {job_id}.\n"
    assert not (here / "gone.csv").exists()
    assert run("jobs").stdout == "No jobs yet.\n"


def test_what_client_authors_trip_over(plain_stub):
    job = upload(plain_stub, b"Department Name,Number of Sales\nA,1\n")
    # Upper case is the same id.
    same = plain_stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id.upper()))
    assert same.job_id == job.job_id
    error = rpc_error(lambda: list(plain_stub.DownloadOutput(
        sales_pb2.DownloadOutputRequest(job_id=job.job_id, kind=7))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A wrong file with a header of thousands of cells: the sentence stays short, and the
    # history still lists in one default reply.
    wrong = ("[" + ", ".join(f'{{"dept": "Toys{n}", "sales": {n}}}' for n in range(5000))
             + "]").encode()
    for _ in range(6):
        error = rpc_error(upload, plain_stub, wrong)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert len(error.details()) < 1000 and "more." in error.details()
    jobs = plain_stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    failed = [j for j in jobs if j.state == sales_pb2.JOB_STATE_FAILED]
    assert len(failed) == 6 and failed[0].error == error.details()
    error = rpc_error(plain_stub.ListDepartments,
                      sales_pb2.ListDepartmentsRequest(job_id=failed[0].job_id))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        f"Job {failed[0].job_id} ended FAILED, so it has no departments.")
