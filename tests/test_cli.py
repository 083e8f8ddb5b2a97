"""`python main.py upload` against a running `python main.py serve`: output and exit codes."""

import signal
import subprocess
import sys
import threading
import time

from conftest import ROOT, wait_for_job
from salesapi import sales_pb2


def run_upload(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "main.py"), "upload", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_upload_prints_the_table_and_output_path(serve_process, tmp_path):
    serve = serve_process()
    csv = tmp_path / "sales.csv"
    csv.write_bytes(b"Date,Department Name,Number of Sales\r\nd,Electronics,1200\r\n"
                    b"d,Clothing,5\r\nd,Clothing,x\r\n")
    done = run_upload(str(csv), "--server", serve.address, "--chunk-size", "7")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:3] == ["Department Name  Total Number of Sales",
                         "Clothing                             5",
                         "Electronics                      1,200"]
    assert "2 departments, 2 rows summed, 1 row rejected" in done.stdout
    assert '  line 4: Number of Sales "x" is not a whole number.' in lines
    output = lines[-1].removeprefix("Output file: ")
    assert open(output, encoding="utf-8").read() == (
        "Department Name,Total Number of Sales\nClothing,5\nElectronics,1200\n")
    assert done.stderr == ""


def test_upload_limits_the_printed_rows(serve_process, tmp_path):
    serve = serve_process()
    csv = tmp_path / "many.csv"
    csv.write_text("Department Name,Number of Sales\n" + "".join(f"D{i:03},1\n" for i in range(150)))
    done = run_upload(str(csv), "--server", serve.address, "--max-rows", "5")
    assert done.returncode == 0
    assert "... and 145 more departments in the output file" in done.stdout
    done = run_upload(str(csv), "--server", serve.address, "--all")
    assert "D149" in done.stdout and "more departments" not in done.stdout


def test_upload_failures_are_one_sentence_and_non_zero(serve_process, tmp_path):
    serve = serve_process()
    bad = tmp_path / "bad.csv"
    bad.write_text("Date,Amount\n1,2\n")
    done = run_upload(str(bad), "--server", serve.address)
    assert done.returncode == 1
    assert done.stderr == ('The header row (line 1) has no "Department Name" and '
                           '"Number of Sales" columns. Columns found: "Date", "Amount".\n')
    assert done.stdout == ""

    done = run_upload(str(tmp_path / "missing.csv"), "--server", serve.address)
    assert done.returncode == 2
    assert done.stderr.startswith("Cannot read ") and "No such file or directory" in done.stderr

    serve.stop()
    good = tmp_path / "good.csv"
    good.write_text("Department Name,Number of Sales\nA,1\n")
    done = run_upload(str(good), "--server", serve.address)
    assert done.returncode == 1
    assert done.stderr == (f"Cannot reach the server at {serve.address}. Check that it is "
                           "running and that the address is right.\n")
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_storage_folder_in_use(serve_process, tmp_path):
    serve_process(tmp_path / "s")
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0",
                           "--storage-dir", str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "Another server is already using the storage folder" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_damaged_history(tmp_path):
    storage = tmp_path / "damaged"
    storage.mkdir()
    (storage / "jobs.sqlite3").write_bytes(b"this is not a database" * 100)
    done = subprocess.run([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0",
                           "--storage-dir", str(storage)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "is damaged or unreadable" in done.stderr and "Traceback" not in done.stderr
    assert (storage / "jobs.sqlite3").read_bytes() == b"this is not a database" * 100


def test_ctrl_c_cancels_the_upload_in_a_sentence(running_server, stub, tmp_path):
    csv = tmp_path / "sales.csv"
    csv.write_bytes(b"Date,Department Name,Number of Sales\n" + b"d,Toys,1\n" * 200_000)
    # 16-byte chunks: the upload takes far longer than the test needs to interrupt it.
    client = subprocess.Popen(
        [sys.executable, str(ROOT / "main.py"), "upload", str(csv), "--server",
         running_server.address, "--chunk-size", "16"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = threading.Event()
    deadline = time.monotonic() + 60
    while not stub.ListJobs(sales_pb2.ListJobsRequest()).jobs:
        assert time.monotonic() < deadline, "the upload never reached the server"
        started.wait(0.02)
    client.send_signal(signal.SIGINT)
    stdout, stderr = client.communicate(timeout=60)
    assert client.returncode == 130
    assert stderr == "Upload cancelled; the server keeps nothing from it.\n"
    assert stdout == ""
    [listed] = stub.ListJobs(sales_pb2.ListJobsRequest()).jobs
    assert wait_for_job(stub, listed.job_id).state == sales_pb2.JOB_STATE_CANCELLED
    assert list(running_server.output_dir.iterdir()) == []


def test_upload_several_files_adds_them_up_and_saves_a_workbook(serve_process, tmp_path):
    """Each file is its own job; the table has one column per file and a Total column; a
    refused file is told and the others still count (exit code 1)."""
    import openpyxl

    serve = serve_process()
    march, april, broken = tmp_path / "march.csv", tmp_path / "april.csv", tmp_path / "x.csv"
    march.write_text("Department Name,Number of Sales\nToys,5\nFood,2\n")
    april.write_text("Department Name,Number of Sales\nFood,10\nGarden,-1\n")
    broken.write_text("Date,Amount\n1,2\n")
    workbook = tmp_path / "combined.xlsx"
    done = run_upload(str(march), str(april), "--server", serve.address, "--save",
                      str(workbook))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:4] == [
        "Department Name  march.csv  april.csv  Total Number of Sales",
        "Food                     2         10                     12",
        "Garden                             -1                     -1",
        "Toys                     5                                 5"]  # blank: not in it
    assert "3 departments in 2 files, 16 sales in all" in done.stdout
    sheet = openpyxl.load_workbook(workbook)["Totals"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows == [["Department Name", "march.csv", "april.csv", "Total Number of Sales"],
                    ["Food", 2, 10, 12], ["Garden", None, -1, -1], ["Toys", 5, None, 5],
                    ["Total", "=SUM(B2:B4)", "=SUM(C2:C4)", "=SUM(D2:D4)"]]

    combined = tmp_path / "combined.csv"
    done = run_upload(str(march), str(broken), str(april), "--server", serve.address,
                      "--save", str(combined))
    assert done.returncode == 1
    assert done.stderr.startswith('x.csv was not processed: The header row (line 1) has no ')
    assert combined.read_text(encoding="utf-8-sig") == ("Department Name,march.csv,april.csv,Total Number of Sales\n"
                                    "Food,2,10,12\nGarden,,-1,-1\nToys,5,,5\n")


def test_upload_saves_one_file_as_a_workbook(serve_process, tmp_path):
    import openpyxl

    serve = serve_process()
    csv = tmp_path / "march.csv"
    csv.write_text("Department Name,Number of Sales\n=1+1,3\nFood,2\nFood,4\n")
    done = run_upload(str(csv), "--server", serve.address, "--save", str(tmp_path / "m.xlsx"))
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(tmp_path / "m.xlsx")["Totals"]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    # A name that looks like a formula is text in the workbook, as it was in the file.
    assert rows == [["Department Name", "Total Number of Sales"], ["=1+1", 3], ["Food", 6],
                    ["Total", "=SUM(B2:B3)"]]
    assert sheet.cell(2, 1).data_type == "s"


def test_a_server_name_that_does_not_resolve_is_one_sentence(tmp_path):
    csv = tmp_path / "sales.csv"
    csv.write_text("Department Name,Number of Sales\nToys,1\n")
    done = run_upload(str(csv), "--server", "no-such-host.invalid:50051")
    assert done.returncode == 1
    assert done.stderr == ("Cannot find a computer called no-such-host.invalid. Check the "
                           "server's name (and that this computer is on the network).\n")
