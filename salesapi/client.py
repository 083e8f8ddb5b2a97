"""What every client of SalesService needs: a channel, the file as chunks, errors in words."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import grpc

from salesapi import sales_pb2

DEFAULT_CHUNK_SIZE = 8192
# A reply lists every department; a file with millions of them needs a large message.
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", -1)]


def open_channel(address: str) -> grpc.Channel:
    """An insecure channel to a server at HOST:PORT."""
    return grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)


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
    with open(path, "rb") as handle:
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


def describe_rpc_error(error: grpc.RpcError, address: str) -> str:
    """A sentence for the user about a failed call; never a traceback."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return (f"Cannot reach the server at {address}. Check that it is running and that the "
                "address is right.")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"The server at {address} did not answer in time."
    if code == grpc.StatusCode.CANCELLED:
        return "The upload was cancelled."
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.NOT_FOUND) and details:
        return details
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"The server at {address} is not a Sales CSV Processor server."
    name = code.name if code is not None else "UNKNOWN"
    return f"The server reported an error ({name}): {details or 'no details'}"
