"""Several servers as one service: the job history in PostgreSQL (and SQLite, through the same
tests), a shared output folder, nginx in front, leases that end the jobs of a killed server."""

from __future__ import annotations

import signal
import threading
import time
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from bench.cluster import Nginx, Postgres, nginx_missing, postgres_missing, shared_server
from conftest import totals, wait_for_job
from salesapi import sales_pb2, sales_pb2_grpc
from server.departments import Departments
from server.job_store import JobRecord, JobState, LeaseLost, StoreError, open_store
from wording.rpc_errors import describe_rpc_error

ROWS = b"Department Name,Number of Sales\nDeli,3\nBakery,5\n"
# Short, so that the kill test is quick; `serve` defaults to 15 s (server/leases.py says why).
LEASE_SECONDS = 3.0


@pytest.fixture(scope="module")
def postgres():
    problem = postgres_missing()
    if problem:
        pytest.skip(problem)
    cluster = Postgres()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    """A fresh, empty history's URL, of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/history/jobs.sqlite3"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def open_history(tmp_path):
    stores = []

    def opened(url: str):
        store = open_store(url, tmp_path / "unused")
        stores.append(store)
        return store

    yield opened
    for store in stores:
        store.close()


def _running(job_id: str) -> JobRecord:
    return JobRecord(job_id=job_id, state=JobState.RUNNING, created_at=time.time())


# The same tests for both stores.

def test_a_job_goes_in_and_comes_back_as_it_was_kept(database, open_history):
    store = open_history(database)
    store.register("server-a", "a")
    store.add(_running("a" * 32), "server-a")
    store.set_filename("a" * 32, "März.csv")
    assert store.get("a" * 32).state == JobState.RUNNING
    departments = Departments.from_pairs([("Deli", 12), ("Bakery, fresh", 3)])
    ended = JobRecord(job_id="a" * 32, state=JobState.COMPLETED, created_at=1.5,
                      filename="März.csv", output_path="/out/a.csv", finished_at=2.5,
                      rows_processed=3, rows_rejected=1, bytes_received=5_000_000_000,
                      department_count=len(departments), encoding="utf-8", delimiter=";",
                      departments=departments, rejected_samples=[(4, "not a number")])
    store.save(ended, "server-a")
    assert store.get("a" * 32) == ended
    assert store.list(10) == [ended.summary()]
    assert store.finished_before(3.0) == ["a" * 32] and store.finished_before(2.0) == []
    store.delete("a" * 32)
    assert store.get("a" * 32) is None and not store.has("a" * 32)


def test_the_jobs_of_a_server_that_stops_renewing_are_failed_and_no_others(database,
                                                                            open_history):
    store = open_history(database)
    store.register("live", "live")
    store.register("gone", "gone")
    store.add(_running("1" * 32), "live")
    store.add(_running("2" * 32), "gone")
    assert store.fail_abandoned(60, time.time()) == []
    deadline = time.monotonic() + 10
    abandoned = []
    while not abandoned and time.monotonic() < deadline:
        store.renew("live", "live", "", [("1" * 32, 100, 7, 1)])
        abandoned = store.fail_abandoned(0.3, time.time())
        threading.Event().wait(0.1)
    assert abandoned == ["2" * 32]
    assert store.get("2" * 32).state == JobState.FAILED
    assert "the server handling it stopped" in store.get("2" * 32).error
    live = store.get("1" * 32)
    assert (live.state, live.bytes_received, live.rows_processed) == (JobState.RUNNING, 100, 7)
    # A job taken for abandoned stays FAILED: its late end is refused, not recorded.
    with pytest.raises(LeaseLost):
        store.save(JobRecord(job_id="2" * 32, state=JobState.COMPLETED, created_at=1.0),
                   "gone")
    assert store.get("2" * 32).state == JobState.FAILED


def test_two_servers_on_one_postgresql_history_sign_page_tokens_alike(postgres, open_history):
    database = postgres.new_database()
    assert open_history(database).page_token_key == open_history(database).page_token_key


def test_an_unusable_database_is_a_sentence(tmp_path, postgres):
    for url, words in [("mysql://root:secret@db/sales", "is not one this server can use"),
                       ("host=db password=secret", "is not one this server can use"),
                       (postgres.url("no_such_database"), 'database "no_such_database" does '
                                                          "not exist"),
                       ("postgresql://postgres:secret@127.0.0.1:1/x", "Connection refused")]:
        with pytest.raises(StoreError, match=words) as info:
            open_store(url, tmp_path)
        assert "secret" not in str(info.value)


# The API through one server, over either history.

def test_a_server_keeps_its_history_in_either_store_across_restarts(database, start_server,
                                                                    tmp_path):
    first = start_server(tmp_path / "first", database=database)
    with grpc.insecure_channel(first.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        kept = stub.UploadCSV(iter([sales_pb2.UploadChunk(data=_file(1), filename="a.csv")]))
        gone = stub.UploadCSV(iter([sales_pb2.UploadChunk(data=_file(2), filename="b.csv")]))
        stub.DeleteJob(sales_pb2.DeleteJobRequest(job_id=gone.job_id))
    first.stop()
    second = start_server(tmp_path / "second", database=database)
    with grpc.insecure_channel(second.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        assert stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=kept.job_id)) == kept
        assert [j.job_id for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs] \
            == [kept.job_id]
        pages, token = [], ""
        while True:
            page = stub.ListDepartments(sales_pb2.ListDepartmentsRequest(
                job_id=kept.job_id, page_size=1_000, page_token=token))
            pages.append(page)
            token = page.next_page_token
            if not token:
                break
        assert len(pages) == 3
        assert [(d.department, d.total_sales) for p in pages for d in p.departments] \
            == totals(kept)


def _stalled_upload(address: str, release: threading.Event):
    """An upload that sends a first chunk, then waits for release before sending the rest;
    returns the call and its job id."""
    def chunks():
        yield sales_pb2.UploadChunk(data=ROWS * 1000, filename="till.csv")
        release.wait(60)
        yield sales_pb2.UploadChunk(data=ROWS[len(b"Department Name,Number of Sales\n"):])

    channel = grpc.insecure_channel(address)
    call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV.future(chunks(), timeout=90)
    call.add_done_callback(lambda _: channel.close())
    return call, dict(call.initial_metadata())["job-id"]


def test_a_database_that_goes_away_is_a_sentence_and_comes_back_by_itself(start_server,
                                                                         tmp_path):
    """PostgreSQL stopped for longer than a lease while one server has an upload under way:
    health and calls say so in a sentence; once it is back everything serves again by itself,
    and the other server does not take the live upload for abandoned."""
    problem = postgres_missing()
    if problem:
        pytest.skip(problem)
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    cluster = Postgres()  # its own: it is stopped and started again
    try:
        database = cluster.new_database()
        live, other = (start_server(tmp_path / name, database=database,
                                    lease_seconds=LEASE_SECONDS) for name in ("live", "other"))
        release = threading.Event()
        call, job_id = _stalled_upload(live.address, release)
        with grpc.insecure_channel(other.address) as channel:
            stub = sales_pb2_grpc.SalesServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)

            def health_turns(status: int) -> None:
                deadline = time.monotonic() + 30
                while health.Check(health_pb2.HealthCheckRequest()).status != status:
                    assert time.monotonic() < deadline, f"health not {status} within 30 s"
                    threading.Event().wait(0.1)

            def upload() -> sales_pb2.Job:
                return stub.UploadCSV(iter([sales_pb2.UploadChunk(data=ROWS)]), timeout=60)

            cluster.pause()
            outage = time.monotonic()
            # Health follows the database even while no call asks for the history: the lease
            # finds it out of reach (a renewal waits 5 s for it).
            health_turns(health_pb2.HealthCheckResponse.NOT_SERVING)
            with pytest.raises(grpc.RpcError) as refused:
                upload()
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            # Clients are not told where the database is; the server's log says it.
            assert refused.value.details() == ("The server cannot reach its job history (a "
                                               "database) just now; try again in a moment.")
            # An outage longer than a lease (each refusal above waited 5 s for the database).
            threading.Event().wait(max(0.0, outage + LEASE_SECONDS * 1.5 - time.monotonic()))
            cluster.resume()
            health_turns(health_pb2.HealthCheckResponse.SERVING)
            # The other server renews, then judges, for more than a lease: the live server has
            # renewed its own lease meanwhile, so its upload goes on.
            threading.Event().wait(LEASE_SECONDS * 1.5)
            release.set()
            job = call.result()
            assert job.state == sales_pb2.JOB_STATE_COMPLETED
            assert totals(job)[0] == ("Bakery", 5_005)
            assert stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job_id)) == job
            assert upload().state == sales_pb2.JOB_STATE_COMPLETED
        live.stop(), other.stop()
    finally:
        cluster.stop()


def test_an_upload_whose_server_lost_its_lease_is_stopped_with_a_sentence(postgres,
                                                                          start_server,
                                                                          tmp_path,
                                                                          open_history):
    database = postgres.new_database()
    server = start_server(tmp_path / "server", database=database, lease_seconds=LEASE_SECONDS)
    release = threading.Event()
    call, job_id = _stalled_upload(server.address, release)
    # What another server does when this one has not renewed its lease in time.
    assert open_history(database).fail_abandoned(0, time.time()) == [job_id]
    with grpc.insecure_channel(server.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        # The server finds out at its next renewal; its upload is refused at the next chunk.
        deadline = time.monotonic() + LEASE_SECONDS * 3
        while not call.done() and time.monotonic() < deadline:
            release.set()
            threading.Event().wait(0.05)
        with pytest.raises(grpc.RpcError) as lost:
            call.result()
        assert lost.value.code() == grpc.StatusCode.UNAVAILABLE
        assert lost.value.details().startswith("This server lost touch with the job history")
        job = stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job_id))
        assert job.state == sales_pb2.JOB_STATE_FAILED
        assert stub.UploadCSV(iter([sales_pb2.UploadChunk(data=ROWS)])).state \
            == sales_pb2.JOB_STATE_COMPLETED


# Several `serve` processes.

@pytest.fixture
def pair(postgres, tmp_path):
    """Two servers sharing a fresh PostgreSQL history and one output folder."""
    database = postgres.new_database()
    output = tmp_path / "shared-output"
    servers = [shared_server(database, output, tmp_path / f"server{n}", "--lease-seconds",
                             str(LEASE_SECONDS)) for n in (1, 2)]
    yield servers, output, database
    for server in servers:
        server.stop()


@pytest.fixture
def nginx(pair):
    problem = nginx_missing()
    if problem:
        pytest.skip(problem)
    proxy = Nginx([server.address for server in pair[0]])
    yield proxy
    proxy.stop()


def _file(number: int) -> bytes:
    return (b"Department Name,Number of Sales\n"
            + b"".join(b"Dept %d,%d\n" % (department, number * 10 + department)
                       for department in range(2_500)) * 4)


def _expected(number: int) -> list[tuple[str, int]]:
    return [(f"Dept {department}", 4 * (number * 10 + department))
            for department in range(2_500)]


def test_eight_uploads_through_nginx_are_all_right_and_any_server_answers_for_them(pair, nginx):
    servers, output, database = pair

    def upload(number: int) -> sales_pb2.Job:
        with grpc.insecure_channel(nginx.address) as channel:  # a client with default options
            data = _file(number)
            chunks = (sales_pb2.UploadChunk(data=data[i:i + 65536], filename=f"till{number}.csv")
                      for i in range(0, len(data), 65536))
            return sales_pb2_grpc.SalesServiceStub(channel).UploadCSV(chunks, timeout=60)

    with futures.ThreadPoolExecutor(8) as pool:
        jobs = list(pool.map(upload, range(8)))
    for number, job in enumerate(jobs):
        assert job.state == sales_pb2.JOB_STATE_COMPLETED
        assert sorted(totals(job)) == sorted(_expected(number))
    channels = [grpc.insecure_channel(server.address) for server in servers]
    try:
        stubs = [sales_pb2_grpc.SalesServiceStub(channel) for channel in channels]
        for job in jobs:
            for stub in stubs:
                assert stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job.job_id)) == job
        for stub in stubs:
            listed = {j.job_id for j in stub.ListJobs(sales_pb2.ListJobsRequest()).jobs}
            assert {job.job_id for job in jobs} <= listed
        # Pages from one server, the next page through the other; the file through either.
        first = stubs[0].ListDepartments(sales_pb2.ListDepartmentsRequest(
            job_id=jobs[0].job_id, page_size=2_000))
        rest = stubs[1].ListDepartments(sales_pb2.ListDepartmentsRequest(
            job_id=jobs[0].job_id, page_size=2_000, page_token=first.next_page_token))
        assert [(d.department, d.total_sales) for d in [*first.departments, *rest.departments]] \
            == totals(jobs[0])
        downloaded = b"".join(chunk.data for chunk in stubs[1].DownloadOutput(
            sales_pb2.DownloadOutputRequest(job_id=jobs[0].job_id)))
        assert downloaded == Path(jobs[0].output_path).read_bytes()
        assert Path(jobs[0].output_path).parent == output.resolve()
        # Deleted through one, gone from the other.
        stubs[0].DeleteJob(sales_pb2.DeleteJobRequest(job_id=jobs[1].job_id))
        with pytest.raises(grpc.RpcError) as gone:
            stubs[1].GetJobStatus(sales_pb2.JobStatusRequest(job_id=jobs[1].job_id))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        for channel in channels:
            channel.close()
    # Both servers took uploads (nginx spreads them round robin).
    import psycopg
    with psycopg.connect(database) as connection:
        assert connection.execute("SELECT count(DISTINCT server_id) FROM jobs").fetchone()[0] == 2


def test_a_killed_servers_upload_is_failed_by_the_other_within_the_lease(pair, nginx):
    (doomed, survivor), output, _ = pair
    release = threading.Event()

    def stalled_stream():
        yield sales_pb2.UploadChunk(data=ROWS * 1000, filename="big.csv")
        release.wait(60)

    with grpc.insecure_channel(doomed.address) as channel:
        call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV.future(stalled_stream(),
                                                                        timeout=60)
        job_id = dict(call.initial_metadata())["job-id"]
        with grpc.insecure_channel(survivor.address) as other:
            survivor_stub = sales_pb2_grpc.SalesServiceStub(other)
            seen = survivor_stub.GetJobStatus(sales_pb2.JobStatusRequest(job_id=job_id))
            assert seen.state == sales_pb2.JOB_STATE_RUNNING
            assert [p for p in output.iterdir() if job_id in p.name]  # its partial file
            # A running job is not the other server's to delete.
            with pytest.raises(grpc.RpcError) as refused:
                survivor_stub.DeleteJob(sales_pb2.DeleteJobRequest(job_id=job_id))
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            doomed.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            doomed.process.wait(timeout=30)
            job = wait_for_job(survivor_stub, job_id, timeout=LEASE_SECONDS * 3)
            noticed = time.monotonic() - killed
            release.set()
            assert job.state == sales_pb2.JOB_STATE_FAILED
            assert job.error == ("The upload was interrupted: the server handling it stopped. "
                                 "Please upload the file again.")
            # Within the lease and one renewal period (and a little for the test's polling).
            assert noticed <= LEASE_SECONDS * (1 + 1 / 3) + 1.0, noticed
            assert [p for p in output.iterdir() if job_id in p.name] == []
    with pytest.raises(grpc.RpcError) as cut_off:
        call.result()
    assert describe_rpc_error(cut_off.value, doomed.address) == (
        f"The connection to the server at {doomed.address} was cut off before it answered (the "
        "server, or a proxy in front of it, stopped or restarted). Try again.")
    # nginx sends every new call to the survivor, which keeps serving.
    with grpc.insecure_channel(nginx.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        for number in range(4):
            job = stub.UploadCSV(iter([sales_pb2.UploadChunk(data=_file(number))]), timeout=60)
            assert sorted(totals(job)) == sorted(_expected(number))


def test_nginx_with_no_server_behind_it_is_a_sentence_for_the_user():
    problem = nginx_missing()
    if problem:
        pytest.skip(problem)
    proxy = Nginx(["127.0.0.1:1"])  # nothing listens there
    try:
        with grpc.insecure_channel(proxy.address) as channel:
            with pytest.raises(grpc.RpcError) as info:
                sales_pb2_grpc.SalesServiceStub(channel).ListJobs(sales_pb2.ListJobsRequest(),
                                                                  timeout=30)
    finally:
        proxy.stop()
    assert describe_rpc_error(info.value, proxy.address) == (
        f"The address {proxy.address} answered, but with no server behind it: the servers "
        "behind that proxy (nginx) are stopped or unreachable. Try again in a moment, or tell "
        "whoever runs them.")
