"""A finished job's results wherever its server runs: every department (ListDepartments, page by
page) and its files (the path itself when this computer has it, else a download)."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
from PySide6.QtCore import QObject, Signal

from desktop_app.api_client import ApiClient
from salesapi import sales_pb2
from salesapi.client import download
from wording.rpc_errors import describe_rpc_error

_PAGE_SIZE = 10_000


class JobResults(QObject):
    """Loads departments and fetches files without blocking the window; the outcomes arrive
    as signals on the GUI thread."""

    departments_loaded = Signal(str, object)  # job id, [(name, total)] in output order
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
        self._wanted = ""  # the job whose departments are being loaded
        self._pages: list = []

    def load_departments(self, job: sales_pb2.Job) -> None:
        """Every department of a completed job; a job whose reply holds them all needs no
        call. Loading another job's departments drops this one's."""
        self._wanted = job.job_id
        if job.departments_complete:
            self.departments_loaded.emit(job.job_id, [(d.department, d.total_sales)
                                                      for d in job.departments])
            return
        self._pages = []
        self._ask(job.job_id, "")

    def _ask(self, job_id: str, token: str) -> None:
        request = sales_pb2.ListDepartmentsRequest(job_id=job_id, page_size=_PAGE_SIZE,
                                                   page_token=token)
        self._api.call(self._stub.ListDepartments, request,
                       lambda page: self._page(job_id, page), self.failed.emit, timeout=60)

    def _page(self, job_id: str, page: sales_pb2.ListDepartmentsResponse) -> None:
        if job_id != self._wanted:
            return
        self._pages.extend((d.department, d.total_sales) for d in page.departments)
        if page.next_page_token:
            self._ask(job_id, page.next_page_token)
            return
        rows, self._pages = self._pages, []
        self.departments_loaded.emit(job_id, rows)

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
