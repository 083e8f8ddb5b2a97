"""`python main.py upload FILE`: streams a file to a server and prints the totals."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import grpc

from salesapi import sales_pb2, sales_pb2_grpc
from cli.results_commands import channel_or_sentence, told
from salesapi.client import all_departments, download, file_chunks, readable_size
from wording.quantities import format_count
from wording.rpc_errors import describe_rpc_error


def upload(path: Path, address: str, chunk_size: int, max_rows: int | None,
           out: TextIO = sys.stdout, err: TextIO = sys.stderr, token: str | None = None,
           ca_cert: str | None = None, save: Path | None = None,
           save_rejected: Path | None = None) -> int:
    """Uploads path and prints the outcome (and saves its files where asked: they are
    downloaded, so the server may be on another machine); returns the process exit code."""
    try:
        size = readable_size(path)
    except IsADirectoryError:
        print(f"{path} is a folder, not a CSV file.", file=err)
        return 2
    except OSError as exc:
        print(f"Cannot read {path}: {exc.strerror or exc}.", file=err)
        return 2
    for target in (save, save_rejected):
        if target is not None and not target.resolve().parent.is_dir():
            print(f"Cannot save to {target}: the folder {target.resolve().parent} does not "
                  "exist.", file=err)
            return 2
    progress = _Progress(size, err) if err.isatty() else None
    started = time.monotonic()
    channel = channel_or_sentence(address, token, ca_cert, err)
    if channel is None:
        return 2
    with channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        try:
            job = stub.UploadCSV(file_chunks(path, chunk_size, progress and progress.update),
                                 wait_for_ready=False)
        except grpc.RpcError as error:
            if progress:
                progress.clear()
            print(describe_rpc_error(error, address, tls=bool(ca_cert)), file=err)
            return 1
        except KeyboardInterrupt:
            # Leaving this block closes the channel, which cancels the call: the server ends
            # the job CANCELLED and removes its files.
            if progress:
                progress.clear()
            print("Upload cancelled; the server keeps nothing from it.", file=err)
            return 130
        if progress:
            progress.clear()

        def results() -> int:
            departments = all_departments(stub, job) if max_rows is None else job.departments
            _print_job(job, departments, time.monotonic() - started, max_rows, out, address)
            saved = [(target, rejected) for target, rejected in ((save, False),
                                                                 (save_rejected, True))
                     if target is not None and (job.rows_rejected or not rejected)]
            for target, rejected in saved:
                download(stub, job.job_id, target, rejected_rows=rejected)
                print(f"Saved {'the rejected rows' if rejected else 'the totals'} to {target}",
                      file=out)
            return 0

        return told(results, address, ca_cert, err)


def _print_job(job: sales_pb2.Job, departments, seconds: float, max_rows: int | None,
               out: TextIO, address: str) -> None:
    rows = [(d.department, f"{d.total_sales:,}") for d in departments]
    shown = rows if max_rows is None else rows[:max_rows]
    name_width = max([len("Department Name")] + [len(name) for name, _ in shown])
    total_width = max([len("Total Number of Sales")] + [len(total) for _, total in shown])
    print(f"{'Department Name':<{name_width}}  {'Total Number of Sales':>{total_width}}", file=out)
    for name, total in shown:
        print(f"{name:<{name_width}}  {total:>{total_width}}", file=out)
    if job.department_count > len(shown):
        print(f"... and {job.department_count - len(shown):,} more departments in the output "
              "file (--all prints every one).", file=out)
    print(file=out)
    print(f"{format_count(job.department_count, 'department')}, "
          f"{format_count(job.rows_processed, 'row')} summed, "
          f"{format_count(job.rows_rejected, 'row')} rejected, {job.bytes_received:,} bytes in "
          f"{seconds:.2f} s.", file=out)
    if job.rows_rejected:
        print(f"Rejected rows (first {len(job.rejected_samples)}):", file=out)
        for sample in job.rejected_samples[:10]:
            print(f"  line {sample.line}: {sample.reason}", file=out)
        if len(job.rejected_samples) > 10:
            print(f"  ... all of them are listed in {job.rejected_path}", file=out)
        print(f"Rejected rows file: {job.rejected_path}", file=out)
    print(f"Job {job.job_id} (from another machine: python main.py download {job.job_id} "
          f"--server {address} -o totals.csv)", file=out)
    print(f"Output file: {job.output_path}", file=out)


class _Progress:
    """A one-line progress display on a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self._total = total
        self._stream = stream
        self._shown = -1

    def update(self, sent: int) -> None:
        percent = 100 if self._total == 0 else sent * 100 // self._total
        if percent != self._shown:
            self._shown = percent
            self._stream.write(f"\rUploading... {percent:3d}% ({sent:,} of {self._total:,} bytes)")
            self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r\033[K")
        self._stream.flush()
