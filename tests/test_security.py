"""Who may talk to the server: loopback by default, TLS or --insecure elsewhere, the token."""

import subprocess
import sys

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import ROOT, chunks_of, rpc_error
from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import open_channel

SALES = b"Department Name,Number of Sales\nToys,5\nFood,7\n"
TOKEN = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def serve_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def run_upload(path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "upload", str(path), *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(ROOT)})


def test_a_network_address_needs_tls_or_insecure(tmp_path):
    done = serve_command("--host", "0.0.0.0", "--storage-dir", str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "Refusing to listen on 0.0.0.0 without TLS: anyone on that network could read the "
        "uploaded files and the totals. Give --tls-cert and --tls-key, or --insecure if the "
        "network is trusted.")
    done = serve_command("--host", "127.0.0.1", "--tls-cert", str(tmp_path / "missing.pem"),
                         "--tls-key", str(tmp_path / "missing.key"))
    assert done.returncode == 4 and "Cannot read the TLS certificate" in done.stderr
    assert "Traceback" not in done.stderr


def test_insecure_allows_a_network_address(serve_process, tmp_path):
    serve = serve_process(tmp_path / "s", "--host", "0.0.0.0", "--insecure")
    assert serve.host == "0.0.0.0"
    with open_channel(f"127.0.0.1:{serve.port}") as channel:
        job = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV(chunks_of(SALES), timeout=30)
    assert job.state == sales_pb2.JOB_STATE_COMPLETED


def test_tls(serve_process, tmp_path, certificate):
    cert, key = certificate
    serve = serve_process(tmp_path / "s", "--tls-cert", str(cert), "--tls-key", str(key))
    address = f"localhost:{serve.port}"
    with open_channel(address) as channel:  # plaintext against TLS
        error = rpc_error(sales_pb2_grpc.SalesServiceStub(channel).ListJobs,
                          sales_pb2.ListJobsRequest(), timeout=10)
        assert error.code() == grpc.StatusCode.UNAVAILABLE
    csv = tmp_path / "sales.csv"
    csv.write_bytes(SALES)
    done = run_upload(csv, "--server", address, "--ca-cert", str(cert))
    assert done.returncode == 0, done.stderr
    assert "2 departments, 2 rows summed" in done.stdout


def test_token_is_required_for_everything_but_health(serve_process, tmp_path):
    serve = serve_process(tmp_path / "s", "--token", TOKEN)
    with open_channel(serve.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        error = rpc_error(stub.UploadCSV, chunks_of(SALES), timeout=30)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error.details() == ("This server needs an access token: send the metadata "
                                   "header `authorization: Bearer <token>` with every call.")
        for call, request in ((stub.ListJobs, sales_pb2.ListJobsRequest()),
                              (stub.GetJobStatus, sales_pb2.JobStatusRequest(job_id="0" * 32))):
            assert rpc_error(call, request, timeout=10).code() == grpc.StatusCode.UNAUTHENTICATED
        # Reflection is open: it only describes the API, and grpcurl needs it to call health.
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = list(reflection.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10))
        assert "sales.SalesService" in [s.name for s in answer.list_services_response.service]
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                             timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    with open_channel(serve.address, token="wrong") as channel:
        error = rpc_error(sales_pb2_grpc.SalesServiceStub(channel).ListJobs,
                          sales_pb2.ListJobsRequest(), timeout=10)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    with open_channel(serve.address, token=TOKEN) as channel:
        job = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV(chunks_of(SALES), timeout=30)
        assert job.state == sales_pb2.JOB_STATE_COMPLETED
    # The scheme in any case (RFC 7235), as client authors write it.
    with grpc.insecure_channel(serve.address) as channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        for scheme in ("bearer", "BEARER", "Bearer"):
            reply = stub.ListJobs(sales_pb2.ListJobsRequest(), timeout=10,
                                  metadata=(("authorization", f"{scheme} {TOKEN}"),))
            assert [j.job_id for j in reply.jobs] == [job.job_id]
        error = rpc_error(stub.ListJobs, sales_pb2.ListJobsRequest(), timeout=10,
                          metadata=(("authorization", "Basic " + TOKEN),))
        assert error.details() == ("The access token was not accepted: send the metadata header "
                                   "`authorization: Bearer <token>` with this server's token.")

    csv = tmp_path / "sales.csv"
    csv.write_bytes(SALES)
    done = run_upload(csv, "--server", serve.address)
    assert done.returncode == 1
    assert done.stderr == (f"The server at {serve.address} needs an access token: pass --token "
                           "or set SALES_TOKEN.\n")
    done = run_upload(csv, "--server", serve.address, "--token", TOKEN)
    assert done.returncode == 0, done.stderr


def test_window_with_token_and_tls(qtbot, serve_process, tmp_path, certificate):
    from desktop_app.main_window import MainWindow

    cert, key = certificate
    serve = serve_process(tmp_path / "s", "--tls-cert", str(cert), "--tls-key", str(key),
                          "--token", TOKEN)
    window = MainWindow(f"localhost:{serve.port}", token=TOKEN, ca_cert=str(cert))
    qtbot.addWidget(window)
    window.show()
    csv = tmp_path / "sales.csv"
    csv.write_bytes(SALES)
    window.select_file(csv)
    with qtbot.waitSignal(window.upload_finished, timeout=60_000) as finished:
        window.start_button.click()
    assert finished.args[0].rows_processed == 2
    window.close()
