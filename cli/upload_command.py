"""`python main.py upload FILE`: streams a file to a server and prints the totals."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import grpc

from salesapi import sales_pb2, sales_pb2_grpc
from cli.results_commands import channel_or_sentence, told
from reports.save import CannotSave, column_titles, save_table
from reports.table import TotalsTable
from salesapi.client import all_departments, download, file_chunks, readable_size
from wording.command import COMMAND
from wording.quantities import format_count
from wording.rpc_errors import describe_rpc_error


def _sizes_or_sentence(paths: list[Path], targets: list[Path | None],
                       err: TextIO) -> list[int] | None:
    """Each file's size, or None once a file that cannot be read, or a folder to save in that
    does not exist, is told on err."""
    sizes = []
    for path in paths:
        try:
            sizes.append(readable_size(path))
        except IsADirectoryError:
            print(f"{path} is a folder, not a CSV file.", file=err)
            return None
        except OSError as exc:
            print(f"Cannot read {path}: {exc.strerror or exc}.", file=err)
            return None
    for target in targets:
        if target is not None and not target.resolve().parent.is_dir():
            print(f"Cannot save to {target}: the folder {target.resolve().parent} does not "
                  "exist.", file=err)
            return None
    return sizes


def upload(path: Path, address: str, chunk_size: int, max_rows: int | None,
           out: TextIO = sys.stdout, err: TextIO = sys.stderr, token: str | None = None,
           ca_cert: str | None = None, save: Path | None = None,
           save_rejected: Path | None = None) -> int:
    """Uploads path and prints the outcome (and saves its files where asked: they are
    downloaded, so the server may be on another machine; a `.xlsx` save is a workbook);
    returns the process exit code."""
    sizes = _sizes_or_sentence([path], [save, save_rejected], err)
    if sizes is None:
        return 2
    size = sizes[0]
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
                if not rejected and target.suffix.lower() == ".xlsx":
                    save_table(_table_of(stub, job), target)
                else:
                    download(stub, job.job_id, target, rejected_rows=rejected)
                print(f"Saved {'the rejected rows' if rejected else 'the totals'} to {target}",
                      file=out)
            return 0

        try:
            return told(results, address, ca_cert, err)
        except CannotSave as exc:
            print(exc, file=err)
            return 2


def upload_several(paths: list[Path], address: str, chunk_size: int, max_rows: int | None,
                   out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                   token: str | None = None, ca_cert: str | None = None,
                   save: Path | None = None) -> int:
    """Uploads each file as its own job, one after another, then prints (and saves) their
    totals side by side with a Total column. A file that is refused is told on err and the
    others still count; the exit code is then 1."""
    sizes = _sizes_or_sentence(paths, [save], err)
    if sizes is None:
        return 2
    channel = channel_or_sentence(address, token, ca_cert, err)
    if channel is None:
        return 2
    started = time.monotonic()
    with channel:
        stub = sales_pb2_grpc.SalesServiceStub(channel)
        jobs = []
        for path, size in zip(paths, sizes):
            progress = _Progress(size, err, f"{path.name}: ") if err.isatty() else None
            try:
                jobs.append(stub.UploadCSV(file_chunks(path, chunk_size,
                                                       progress and progress.update)))
            except grpc.RpcError as error:
                if progress:
                    progress.clear()
                print(f"{path.name} was not processed: "
                      f"{describe_rpc_error(error, address, tls=bool(ca_cert))}", file=err)
                continue
            except KeyboardInterrupt:
                if progress:
                    progress.clear()
                print("Upload cancelled; the server keeps nothing from the file being sent.",
                      file=err)
                return 130
            if progress:
                progress.clear()

        def results() -> int:
            if not jobs:
                return 1
            table = TotalsTable.combined([(job.filename, _table_of(stub, job))
                                          for job in jobs])
            _print_table(table, max_rows, out)
            for job in jobs:
                print(f"{job.filename}: {format_count(job.department_count, 'department')}, "
                      f"{format_count(job.rows_processed, 'row')} summed, "
                      f"{format_count(job.rows_rejected, 'row')} rejected (job {job.job_id}).",
                      file=out)
            print(f"{format_count(len(table), 'department')} in "
                  f"{format_count(len(jobs), 'file')}, {table.grand_total:,} sales in all, in "
                  f"{time.monotonic() - started:.2f} s.", file=out)
            if save is not None:
                save_table(table, save)
                print(f"Saved the combined totals to {save}", file=out)
            return 0 if len(jobs) == len(paths) else 1

        try:
            return told(results, address, ca_cert, err)
        except CannotSave as exc:
            print(exc, file=err)
            return 2


def _table_of(stub, job: sales_pb2.Job) -> TotalsTable:
    return TotalsTable.of_file(job.filename, [(d.department, d.total_sales)
                                              for d in all_departments(stub, job)])


def _print_table(table: TotalsTable, max_rows: int | None, out: TextIO) -> None:
    """Department, one column per file, Total, in name order (the first max_rows)."""
    titles = column_titles(table)
    shown = range(len(table)) if max_rows is None else range(min(max_rows, len(table)))
    totals = table.totals
    rows = [[table.names[row], *("" if v is None else f"{v:,}" for v in table.cells([row])[0]),
             f"{int(totals[row]):,}"] for row in shown]
    widths = [max([len(title)] + [len(row[column]) for row in rows])
              for column, title in enumerate(titles)]
    for row in [titles, *rows]:
        print("  ".join([f"{row[0]:<{widths[0]}}"]
                        + [f"{cell:>{width}}" for cell, width in zip(row[1:], widths[1:])]),
              file=out)
    if len(table) > len(rows):
        print(f"... and {len(table) - len(rows):,} more departments (--all prints every one; "
              "--save writes them all).", file=out)
    print(file=out)


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
    print(f"Job {job.job_id} (from another machine: {COMMAND} download {job.job_id} "
          f"--server {address} -o totals.csv)", file=out)
    print(f"Output file: {job.output_path}", file=out)


class _Progress:
    """A one-line progress display on a terminal."""

    def __init__(self, total: int, stream: TextIO, prefix: str = "") -> None:
        self._total = total
        self._stream = stream
        self._prefix = prefix
        self._shown = -1

    def update(self, sent: int) -> None:
        percent = 100 if self._total == 0 else sent * 100 // self._total
        if percent != self._shown:
            self._shown = percent
            self._stream.write(f"\r{self._prefix}Uploading... {percent:3d}% ({sent:,} of {self._total:,} bytes)")
            self._stream.flush()

    def clear(self) -> None:
        self._stream.write("\r\033[K")
        self._stream.flush()
