"""What every Python client of SalesService needs: a channel (TLS, token) and the file as chunks."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Callable, Iterator

import grpc

from salesapi import sales_pb2

DEFAULT_CHUNK_SIZE = 8192
# The file is read ahead in this much at a time, not one system call per chunk (measured: less
# CPU per upload, which on a busy machine is time).
_READ_AHEAD = 1 << 20
# Every reply fits in gRPC's default 4 MB: channels keep gRPC's defaults, as any client's.
_CHANNEL_OPTIONS: list[tuple[str, int]] = []


def channel_credentials(ca_cert: str | os.PathLike | None) -> grpc.ChannelCredentials | None:
    """TLS credentials trusting ca_cert (a PEM file), or None for plaintext; raises OSError if
    the file cannot be read."""
    if not ca_cert:
        return None
    return grpc.ssl_channel_credentials(root_certificates=Path(ca_cert).read_bytes())


def token_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries a token (none without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def open_channel(address: str, token: str | None = None,
                 ca_cert: str | os.PathLike | None = None) -> grpc.Channel:
    """A channel to a server at HOST:PORT: TLS when ca_cert (a PEM file) is given, and every call
    carrying `authorization: Bearer <token>` when token is given."""
    credentials = channel_credentials(ca_cert)
    if credentials is not None:
        channel = grpc.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
    else:
        channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
    if token:
        channel = grpc.intercept_channel(channel, _BearerToken(token))
    return channel


def open_aio_channel(address: str,
                     credentials: grpc.ChannelCredentials | None = None) -> grpc.aio.Channel:
    """An asyncio channel to HOST:PORT, bound to the running loop: TLS with credentials (see
    channel_credentials). Pass token_metadata(token) with each call."""
    if credentials is not None:
        return grpc.aio.secure_channel(address, credentials, options=_CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(address, options=_CHANNEL_OPTIONS)


class _CallDetails(
        collections.namedtuple("_CallDetails", ("method", "timeout", "metadata", "credentials",
                                                "wait_for_ready", "compression")),
        grpc.ClientCallDetails):
    pass


class _BearerToken(grpc.UnaryUnaryClientInterceptor, grpc.StreamUnaryClientInterceptor,
                   grpc.UnaryStreamClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the token to every call's metadata."""

    def __init__(self, token: str) -> None:
        (self._header,) = token_metadata(token)

    def _details(self, details: grpc.ClientCallDetails) -> _CallDetails:
        metadata = list(details.metadata or ()) + [self._header]
        return _CallDetails(details.method, details.timeout, metadata, details.credentials,
                            details.wait_for_ready, details.compression)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


def readable_size(path: str | os.PathLike) -> int:
    """The size of a file this process can read; raises OSError saying why not (a folder is
    IsADirectoryError), before anything is sent."""
    if os.path.isdir(path):
        raise IsADirectoryError(21, "it is a folder, not a file", str(path))
    size = os.path.getsize(path)
    with open(path, "rb"):
        pass
    return size


def file_chunks(
    path: Path,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_sent: Callable[[int], None] | None = None,
) -> Iterator[sales_pb2.UploadChunk]:
    """Reads the file lazily as UploadChunks, the first one naming the file.

    on_sent(total_bytes) is called as each chunk is handed to gRPC (from gRPC's own thread). An
    empty file still yields one chunk, so that the server learns its name.
    """
    filename = os.path.basename(path)
    sent = 0
    with open(path, "rb", buffering=max(_READ_AHEAD, chunk_size)) as handle:
        data = handle.read(chunk_size)
        yield sales_pb2.UploadChunk(data=data, filename=filename)
        sent += len(data)
        if on_sent is not None:
            on_sent(sent)
        while data := handle.read(chunk_size):
            yield sales_pb2.UploadChunk(data=data)
            sent += len(data)
            if on_sent is not None:
                on_sent(sent)


def all_departments(stub, job: sales_pb2.Job, timeout: float | None = None,
                    ) -> Iterator[sales_pb2.DepartmentTotal]:
    """Every department of a completed job in output order: the Job's own if it holds them all,
    else page by page from ListDepartments."""
    if job.departments_complete:
        yield from job.departments
        return
    token = ""
    while True:
        page = stub.ListDepartments(sales_pb2.ListDepartmentsRequest(
            job_id=job.job_id, page_size=10_000, page_token=token), timeout=timeout)
        yield from page.departments
        token = page.next_page_token
        if not token:
            return


def download(stub, job_id: str, path: str | os.PathLike, rejected_rows: bool = False,
             timeout: float | None = None) -> int:
    """Writes a job's output file (or its rejected-rows file) to path, whole or not at all (a
    temporary name beside it, then renamed); returns its size. Raises grpc.RpcError (NOT_FOUND
    when the job has no such file) or OSError."""
    kind = sales_pb2.OUTPUT_KIND_REJECTED_ROWS if rejected_rows else sales_pb2.OUTPUT_KIND_TOTALS
    path = Path(path)
    temporary = path.with_name(f".{path.name}.download")
    size = 0
    try:
        try:
            handle = open(temporary, "wb")
        except OSError as exc:  # named by the path asked for, not the temporary one
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        with handle:
            for chunk in stub.DownloadOutput(sales_pb2.DownloadOutputRequest(job_id=job_id,
                                                                              kind=kind),
                                             timeout=timeout):
                handle.write(chunk.data)
                size += len(chunk.data)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()
    return size
