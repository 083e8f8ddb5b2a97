"""A finished job's results for clients on other machines: pages of departments (AIP-158 page
tokens) and its files as a stream of chunks."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
from concurrent.futures import Executor
from pathlib import Path
from typing import AsyncIterator

from salesapi import sales_pb2

DEFAULT_PAGE_SIZE = 1000
MAX_PAGE_SIZE = 10_000
# A downloaded file comes in chunks of at most this many bytes, read from disk this much at a
# time.
CHUNK_BYTES = 64 * 1024
_READ_BYTES = 1 << 20
_TOKEN_PREFIX = "p1"
# Page tokens are signed with a key the history keeps (JobStore.page_token_key), so that a
# client pages only from where a server said, through any server that shares the history.


def page_size(requested: int) -> int | None:
    """The page size to use for a request's page_size; None if it is negative."""
    if requested < 0:
        return None
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_token(key: bytes, job_id: str, start: int) -> str:
    """An opaque token for the page of job_id that starts at department `start`."""
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}:{job_id}:{start}:"
                                    f"{_signature(key, job_id, start)}".encode()).decode()


def _signature(key: bytes, job_id: str, start: int) -> str:
    return hmac.new(key, f"{job_id}:{start}".encode(), hashlib.sha256).hexdigest()[:32]


def page_start(key: bytes, token: str, job_id: str, count: int) -> int | None:
    """Where the page a token names starts (0 for an empty token); None if the token is not
    one page_token() made for this job, or points past its `count` departments."""
    if not token:
        return 0
    try:
        decoded = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
        prefix, token_job, start, signature = decoded.decode().split(":")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if prefix != _TOKEN_PREFIX or token_job != job_id or not start.isdigit():
        return None
    start = int(start)
    if not hmac.compare_digest(signature, _signature(key, job_id, start)):
        return None
    return start if 0 < start < count else None


def file_path(record, kind: int) -> str:
    """The job's file of that OutputKind, "" if it has none."""
    if kind == sales_pb2.OUTPUT_KIND_REJECTED_ROWS:
        return record.rejected_path
    return record.output_path


async def file_chunks(path: Path, executor: Executor) -> AsyncIterator[bytes]:
    """The file's bytes as serialized FileChunk messages of at most CHUNK_BYTES, read on the
    executor; raises OSError if it cannot be opened."""
    loop = asyncio.get_running_loop()
    handle = await loop.run_in_executor(executor, open, path, "rb")
    try:
        while block := await loop.run_in_executor(executor, handle.read, _READ_BYTES):
            for start in range(0, len(block), CHUNK_BYTES):
                yield sales_pb2.FileChunk(data=block[start:start + CHUNK_BYTES]).SerializeToString()
    finally:
        handle.close()
