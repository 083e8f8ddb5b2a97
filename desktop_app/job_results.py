"""A finished job's results wherever its server runs: every department (ListDepartments, page by
page) and its files (the path itself when this computer has it, else a download)."""

from __future__ import annotations

import threading
from array import array
from pathlib import Path

import grpc
from PySide6.QtCore import QObject, Signal

from desktop_app.api_client import ApiClient
from desktop_app.background import Background
from reports.table import TotalsTable
from salesapi import sales_pb2
from salesapi.client import download
from wording.rpc_errors import describe_rpc_error

_PAGE_SIZE = 10_000


def ready_table(names: list[str], totals) -> TotalsTable:
    """One job's table with its order by total made (the window shows it biggest first)."""
    table = TotalsTable.of_columns("Total sales", names, totals)
    table.order_by(None)
    return table


def _read(departments, names: list[str], totals: array) -> None:
    """Appends DepartmentTotal messages' names and totals (two flat columns: no object per
    department for the garbage collector to walk)."""
    names.extend(d.department for d in departments)
    totals.extend(d.total_sales for d in departments)


class JobResults(QObject):
    """Loads departments and fetches files without blocking the window; the outcomes arrive
    as signals on the GUI thread."""

    departments_loaded = Signal(str, object)  # job id, TotalsTable in output order
    file_ready = Signal(str, str)  # what it is for ("open", "folder"), a local path
    failed = Signal(str)  # a sentence

    def __init__(self, stub, api: ApiClient, download_folder: Path, server_is_here: bool,
                 parent: QObject | None = None) -> None:
        """server_is_here: the server runs in this program (its paths are this computer's);
        else files are always downloaded, even when a path with the same name exists here."""
        super().__init__(parent)
        self._server_is_here = server_is_here
        self._stub = stub
        self._api = api
        self.download_folder = download_folder
        self.background = Background(self)
        # The jobs whose departments are being loaded: the pages received so far (read on a
        # thread once all are in).
        self._pages: dict[str, list] = {}

    def load_departments(self, jobs: list[sales_pb2.Job]) -> None:
        """Every department of each completed job, each as its table arrives. A job whose
        reply holds them all needs no call. Loads asked for before are dropped."""
        self._pages = {job.job_id: [] for job in jobs}
        for job in jobs:
            if job.departments_complete:  # read off the reply on the thread, too
                self._build(job.job_id, [job.departments])
            else:
                self._ask(job.job_id, "")

    def _ask(self, job_id: str, token: str) -> None:
        request = sales_pb2.ListDepartmentsRequest(job_id=job_id, page_size=_PAGE_SIZE,
                                                   page_token=token)
        self._api.call(self._stub.ListDepartments, request,
                       lambda page: self._page(job_id, page), self.failed.emit, timeout=60)

    def _page(self, job_id: str, page: sales_pb2.ListDepartmentsResponse) -> None:
        if job_id not in self._pages:
            return
        self._pages[job_id].append(page.departments)
        if page.next_page_token:
            self._ask(job_id, page.next_page_token)
            return
        self._build(job_id, self._pages[job_id])

    def _build(self, job_id: str, parts: list) -> None:
        """The table of parts, each a sequence of DepartmentTotal messages (on a thread)."""

        def build() -> TotalsTable:
            names: list[str] = []
            totals = array("q")
            for departments in parts:
                _read(departments, names, totals)
            return ready_table(names, totals)

        def built(table: TotalsTable) -> None:
            if job_id in self._pages:
                self.departments_loaded.emit(job_id, table)

        self.background.run(build, built,
                            lambda exc: self.failed.emit(f"Could not show the totals: {exc}"))

    def fetch_file(self, job: sales_pb2.Job, rejected: bool, purpose: str) -> None:
        """The job's totals (or rejected rows) file on this computer: its own path if the
        server runs in this program, else downloaded to download_folder (a thread)."""
        path = job.rejected_path if rejected else job.output_path
        if self._server_is_here and path and Path(path).exists():
            self.file_ready.emit(purpose, path)
            return
        stem = Path(job.filename or job.job_id).stem
        target = self.download_folder / f"{stem} {'rejected rows' if rejected else 'totals'}.csv"

        def run() -> None:
            try:
                self.download_folder.mkdir(parents=True, exist_ok=True)
                download(self._stub, job.job_id, target, rejected_rows=rejected, timeout=600)
            except grpc.RpcError as error:
                self.failed.emit(describe_rpc_error(error, self._api.address))
            except OSError as exc:
                self.failed.emit(f"Cannot save the file in {self.download_folder}: "
                                 f"{exc.strerror or exc}.")
            else:
                self.file_ready.emit(purpose, str(target))

        threading.Thread(target=run, name="download", daemon=True).start()
