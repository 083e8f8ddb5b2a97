"""`python main.py jobs | download | delete`: a server's job history and results, from any
machine that can reach it (files come through DownloadOutput, never from a shared path)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import grpc

from salesapi import sales_pb2, sales_pb2_grpc
from salesapi.client import download, open_channel
from wording.quantities import format_count
from wording.rpc_errors import describe_rpc_error

_STATES = {sales_pb2.JOB_STATE_RUNNING: "running", sales_pb2.JOB_STATE_COMPLETED: "done",
           sales_pb2.JOB_STATE_FAILED: "failed", sales_pb2.JOB_STATE_CANCELLED: "cancelled"}


def channel_or_sentence(address: str, token: str | None, ca_cert: str | None,
                        err: TextIO) -> grpc.Channel | None:
    """A channel to the server, or None once an unreadable CA certificate is told on err."""
    try:
        return open_channel(address, token, ca_cert)
    except OSError as exc:
        print(f"Cannot read the CA certificate {ca_cert}: {exc.strerror or exc}.", file=err)
        return None


def run_with_stub(address: str, token: str | None, ca_cert: str | None,
                  action: Callable[[sales_pb2_grpc.SalesServiceStub], int],
                  err: TextIO = sys.stderr) -> int:
    """action(stub) on a channel to the server; a failed call or an unreadable CA certificate
    is one sentence on err and exit code 1 (2 for a local file)."""
    channel = channel_or_sentence(address, token, ca_cert, err)
    if channel is None:
        return 2
    with channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        return told(lambda: action(stub), address, ca_cert, err)


def told(action: Callable[[], int], address: str, ca_cert: str | None, err: TextIO) -> int:
    """action()'s exit code; a failed call is one sentence on err and 1, a file that cannot be
    written one sentence and 2."""
    try:
        return action()
    except grpc.RpcError as error:
        print(describe_rpc_error(error, address, tls=bool(ca_cert)), file=err)
        return 1
    except BrokenPipeError:  # the reader stopped reading (`jobs | head -1`): nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"Cannot write {exc.filename}: {exc.strerror or exc}.", file=err)
        return 2


def download_command(job_id: str, target: Path, rejected: bool,
                     out: TextIO = sys.stdout) -> Callable:
    def action(stub) -> int:
        size = download(stub, job_id, target, rejected_rows=rejected, timeout=600)
        what = "rejected rows" if rejected else "totals"
        print(f"Saved the {what} of job {job_id} to {target} ({size:,} bytes).", file=out)
        return 0
    return action


def jobs_command(limit: int, out: TextIO = sys.stdout) -> Callable:
    def action(stub) -> int:
        jobs = stub.ListJobs(sales_pb2.ListJobsRequest(limit=limit), timeout=60).jobs
        if not jobs:
            print("No jobs yet.", file=out)
            return 0
        rows = [(job.job_id, _STATES.get(job.state, "?"),
                 time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.created_at.seconds)),
                 f"{job.department_count:,}", f"{job.rows_processed:,}", job.filename or "-")
                for job in jobs]
        header = ("Job", "State", "Started", "Departments", "Rows", "File")
        widths = [max(len(row[i]) for row in rows + [header]) for i in range(5)]
        for row in [header] + rows:
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                     row[3].rjust(widths[3]), row[4].rjust(widths[4]), row[5]]
            print("  ".join(cells), file=out)
        print(f"\n{format_count(len(jobs), 'job')}, newest first.", file=out)
        return 0
    return action


def delete_command(job_id: str, out: TextIO = sys.stdout) -> Callable:
    def action(stub) -> int:
        job = stub.DeleteJob(sales_pb2.DeleteJobRequest(job_id=job_id), timeout=60)
        print(f"Deleted job {job.job_id} ({job.filename or 'no file name'}) and its files.",
              file=out)
        return 0
    return action
