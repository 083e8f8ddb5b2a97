"""SalesService over gRPC: maps requests onto the job manager and errors onto status codes."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Awaitable, Callable

import grpc

from salesapi import sales_pb2, sales_pb2_grpc
from server.aggregation import InputError, LimitExceeded
from server.departments import Departments
from server import job_results
from server.job_replies import (DEPARTMENTS_BUDGET, PAGE_DEPARTMENTS, encode_departments,
                                encode_job, job_message)
from server.job_store import HistoryUnavailable, JobRecord, JobState, LeaseLost, StoreError
from server.jobs import JobManager, JobRunning, NoResult, is_job_id
from server.memory import release_unused
from server.request_guard import UnreadableMessage
from server.upload_feeder import BlockFeeder
from server.upload_job import Abandoned, OutputError, UploadJob, bounded, cannot_write_message
from server.upload_watch import IdleWatch, UploadIdle

log = logging.getLogger(__name__)

SERVER_STOPPING_MESSAGE = "The server was stopped during the upload; please upload the file again."
# How long a stop waits for the uploads it cuts off to be recorded and told why.
CUT_OFF_SECONDS = 5.0
# Once uploads have ended and none has started for this long, freed memory goes back to the
# system (server/memory.py): after the reply has gone, and not between two uploads in a row.
RELEASE_MEMORY_AFTER_SECONDS = 1.0


async def _check_job_id(job_id: str, context: grpc.aio.ServicerContext) -> str:
    """The job id as kept (lower case); INVALID_ARGUMENT, in a sentence, for a job_id that
    cannot be one."""
    if not job_id:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            "The request names no job: job_id (field 1) is empty. (A client "
                            "that maps field names to camelCase sends it as jobId.)")
    if not is_job_id(job_id):
        shown = "".join(c if c.isprintable() else "?" for c in job_id[:64])
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                            f"\"{shown}\" is not a job id; a job id is 32 hexadecimal "
                            "characters (0-9, a-f), as UploadCSV's job-id gives it.")
    return job_id.lower()


class SalesServicer(sales_pb2_grpc.SalesServiceServicer):
    """Thin: every decision about files and jobs is the job manager's.

    Runs on the server's event loop, which only moves bytes and replies. Each upload is
    aggregated and completed on a thread of its own; the reply's encoding, the history and the
    ending of jobs run on `executor`, so that the loop keeps serving every other call.
    """

    def __init__(self, jobs: JobManager, executor: Executor) -> None:
        self._jobs = jobs
        self._executor = executor
        self._stopping = False
        # Awaited once the history has failed while serving (health turns NOT_SERVING).
        self.on_history_unavailable: Callable[[], Awaitable[None]] | None = None
        # Awaited when a shared history answers again (health back to SERVING).
        self.on_history_available: Callable[[], Awaitable[None]] | None = None
        self._history_failed = False
        self._uploads: set[asyncio.Task] = set()  # the running UploadCSV handlers

    async def cut_off(self) -> None:
        """Ends the uploads still running once a stop's grace is over: each is FAILED and its
        client hears why (UNAVAILABLE, SERVER_STOPPING_MESSAGE) rather than gRPC's "Cancelling
        all calls". Uploads abandoned from now on were cut off by the server, not cancelled by
        their clients."""
        self._stopping = True
        uploads = list(self._uploads)
        for upload in uploads:
            upload.cancel()
        if uploads:
            await asyncio.wait(uploads, timeout=CUT_OFF_SECONDS)

    async def _in_thread(self, function: Callable, *args,
                         on_cancel: Callable[[], None] | None = None,
                         executor: Executor | None = None):
        """function(*args) on the executor (the server's unless another is given). If the call
        is cancelled meanwhile, on_cancel() runs and the function is still waited for: a job is
        never ended while a thread works on it."""
        future = asyncio.get_running_loop().run_in_executor(executor or self._executor,
                                                            function, *args)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if on_cancel is not None:
                on_cancel()
            await asyncio.wait([future])
            raise

    async def UploadCSV(self, _request_iterator, context):
        task = asyncio.current_task()
        self._uploads.add(task)
        try:
            return await self._upload(context)
        finally:
            self._uploads.discard(task)
            try:
                asyncio.get_running_loop().call_later(RELEASE_MEMORY_AFTER_SECONDS,
                                                      self._release_memory_if_idle)
            except RuntimeError:  # the loop is being torn down with the call: nothing to free
                pass

    def _release_memory_if_idle(self) -> None:
        if self._stopping or not self._jobs.wait_idle(0):
            return
        try:
            self._executor.submit(release_unused)
        except RuntimeError:  # the server has stopped meanwhile
            pass

    async def _upload(self, context: grpc.aio.ServicerContext):
        try:
            job = self._jobs.start_upload()  # quick: one file opened, one row written
        except LimitExceeded as exc:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except OutputError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        except HistoryUnavailable as exc:
            await self.history_fails(exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        log.info("job %s started", job.job_id)
        code = message = None
        try:
            await context.send_initial_metadata((("job-id", job.job_id),))
            record, departments = await self._receive(job, context)
            departments = await departments
        except (asyncio.CancelledError, grpc.RpcError, Abandoned):
            # The call is gone: cancelled by its client (who may also have vanished) or cut off
            # by a stop. Nobody reads a reply. A job that completed just before stays so.
            if not job.ended:
                await self._in_thread(self._end_quietly, job, None)
            log.info("job %s ended %s", job.job_id, job.record.state.name)
            if self._stopping and not context.cancelled() \
                    and job.record.state != JobState.COMPLETED:
                await context.abort(grpc.StatusCode.UNAVAILABLE, SERVER_STOPPING_MESSAGE)
            raise asyncio.CancelledError from None
        except InputError as exc:
            code, message = grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        except LimitExceeded as exc:
            code, message = grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
        except UploadIdle as exc:
            code, message = grpc.StatusCode.DEADLINE_EXCEEDED, str(exc)
        except HistoryUnavailable as exc:
            await self.history_fails(exc)
            code, message = grpc.StatusCode.UNAVAILABLE, str(exc)
        except LeaseLost as exc:
            code, message = grpc.StatusCode.UNAVAILABLE, str(exc)
        except OSError as exc:
            log.error("job %s: cannot write its files: %s", job.job_id, exc)
            code, message = grpc.StatusCode.UNAVAILABLE, cannot_write_message(exc)
        except Exception:
            log.exception("job %s failed unexpectedly", job.job_id)
            code = grpc.StatusCode.INTERNAL
            message = "The server hit an internal error while processing the file."
        if code is not None:
            message = bounded(message)
            # (A job may have completed before its reply's encoding failed.)
            if not job.ended:
                await self._in_thread(self._end_quietly, job, message)
            log.info("job %s ended %s: %s", job.job_id, job.record.state.name, message)
            await context.abort(code, message)
        log.info("job %s ended %s: %s rows, %s rejected", job.job_id, record.state.name,
                 record.rows_processed, record.rows_rejected)
        return await self._in_thread(encode_job, record, departments)

    def _end_quietly(self, job: UploadJob, message: str | None) -> None:
        """Ends a job that did not complete: FAILED with message, or, with None, as a call
        that is gone (cut off by this server, or cancelled by its client). A history that
        fails meanwhile was reported already: the job's files are gone either way."""
        try:
            if message is not None:
                job.fail(message)
            elif self._stopping:
                job.fail(SERVER_STOPPING_MESSAGE)
            else:
                job.cancel()
        except HistoryUnavailable as exc:
            log.error("job %s could not be recorded: %s", job.job_id, exc)

    async def history_answers(self) -> None:
        """The history answers again (a shared database that was out of reach): health turns
        SERVING if it had turned NOT_SERVING."""
        if not self._history_failed:
            return
        self._history_failed = False
        log.info("the job history answers again")
        if self.on_history_available is not None:
            await self.on_history_available()

    async def history_fails(self, error: StoreError) -> None:
        """The history does not answer (a call found it so, or the lease of a shared one):
        once, logs the failure and turns health NOT_SERVING."""
        if self._history_failed:
            return
        self._history_failed = True
        log.error("%s", getattr(error, "detail", error))
        if self.on_history_unavailable is not None:
            await self.on_history_unavailable()

    async def _receive(self, job: UploadJob, context: grpc.aio.ServicerContext
                       ) -> tuple[JobRecord, Awaitable[bytes]]:
        """Feeds the request stream to the job, then completes it; returns its record and the
        reply's departments, encoded on the server's executor while the job writes its files.

        The job aggregates on a thread of its own: Arrow's allocator keeps freed memory per
        thread, and blocks spread over the server's pool kept more of it (a 1 GB upload peaked
        at 185-187 MiB against 160-161 MiB, bench/README.md)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload") as aggregation:
            feeder = BlockFeeder(job.feed, aggregation)
            idle = IdleWatch(self._jobs.limits.upload_idle_seconds)
            try:
                # context.read() rather than the request iterator: measured 4 to 10 % faster
                # per message.
                while (chunk := await context.read()) is not grpc.aio.EOF:
                    if isinstance(chunk, UnreadableMessage):
                        if chunk.too_large:
                            raise LimitExceeded(chunk.reason)
                        raise InputError(chunk.reason)
                    if chunk.filename:
                        job.set_filename(chunk.filename)
                    data = chunk.data  # each read of a bytes field is a copy
                    if data:
                        job.count_bytes(len(data))
                        await feeder.add(data)
                        idle.saw_bytes()
                idle.stop()
                await feeder.flush()
            except BaseException as exc:
                # The call is over for the client: another upload may start at once, while
                # this job's thread finishes the block it has (settle) and the job ends.
                self._jobs.free_slot(job)
                if isinstance(exc, asyncio.CancelledError) and idle.expired:
                    raise idle.error() from None
                raise
            finally:
                idle.stop()
                await feeder.settle()
            gone = threading.Event()
            encoding = []

            def encode(totals: Departments) -> None:
                encoding.append(self._executor.submit(encode_departments, totals))

            record = await self._in_thread(job.complete, gone.is_set, encode,
                                           on_cancel=gone.set, executor=aggregation)
        return record, asyncio.wrap_future(encoding[0])

    async def GetJobStatus(self, request, context):
        job_id = await _check_job_id(request.job_id, context)
        reply = await self._from_history(context, self._encoded_job, job_id)
        if reply is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"There is no job {job_id}.")
        return reply

    def _encoded_job(self, job_id: str) -> bytes | None:
        record = self._jobs.get(job_id)
        return None if record is None else encode_job(record)

    async def ListJobs(self, request, context):
        if request.limit < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"limit is {request.limit}; expected 0 (the default, 100) or "
                                "more.")
        records = await self._from_history(context, self._jobs.list, request.limit)
        reply, size = sales_pb2.ListJobsResponse(), 0
        for record in records:  # newest first, as many as fit in a reply
            job = job_message(record)
            size += job.ByteSize() + 8
            if size > DEPARTMENTS_BUDGET:
                break
            reply.jobs.append(job)
        return reply

    async def ListDepartments(self, request, context):
        job_id = await _check_job_id(request.job_id, context)
        size = job_results.page_size(request.page_size)
        if size is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"page_size is {request.page_size}; expected 0 (the default, "
                                f"{job_results.DEFAULT_PAGE_SIZE:,}) or more.")
        departments = await self._finished(context, self._jobs.completed_departments, job_id)
        key = self._jobs.store.page_token_key
        start = job_results.page_start(key, request.page_token, job_id, len(departments))
        if start is None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                "page_token is not one the service gave for this job's "
                                "departments; start again with an empty page_token.")
        return await self._in_thread(self._encoded_page, key, job_id, departments, start, size)

    @staticmethod
    def _encoded_page(key: bytes, job_id: str, departments: Departments, start: int,
                      size: int) -> bytes:
        page = encode_departments(departments.slice(start, size), PAGE_DEPARTMENTS)
        end = start + page.count
        token = job_results.page_token(key, job_id, end) if end < len(departments) else ""
        return page.data + sales_pb2.ListDepartmentsResponse(
            next_page_token=token).SerializeToString()

    async def DownloadOutput(self, request, context):
        job_id = await _check_job_id(request.job_id, context)
        if request.kind not in (sales_pb2.OUTPUT_KIND_TOTALS,
                                sales_pb2.OUTPUT_KIND_REJECTED_ROWS):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"kind {request.kind} is not an OutputKind this server knows; "
                                "expected OUTPUT_KIND_TOTALS (0) or OUTPUT_KIND_REJECTED_ROWS (1).")
        record = await self._finished(context, self._jobs.ended, job_id)
        path = job_results.file_path(record, request.kind)
        if not path:
            if record.state != JobState.COMPLETED:
                what = f"ended {record.state.name}, so it has no files"
            else:
                what = "has no rejected-rows file: no row was rejected"
            await context.abort(grpc.StatusCode.NOT_FOUND, f"Job {job_id} {what}.")
        try:
            async for chunk in job_results.file_chunks(Path(path), self._executor):
                yield chunk
        except FileNotFoundError:
            await context.abort(grpc.StatusCode.NOT_FOUND,
                                f"The file of job {job_id} is no longer on the server ({path}).")

    async def DeleteJob(self, request, context):
        job_id = await _check_job_id(request.job_id, context)
        record = await self._finished(context, self._jobs.delete, job_id)
        return await self._in_thread(encode_job, record)

    async def _finished(self, context: grpc.aio.ServicerContext, function: Callable,
                        job_id: str):
        """function(job_id) from the history for a job that has ended: NOT_FOUND if there is
        no such job, FAILED_PRECONDITION while it runs."""
        try:
            result = await self._from_history(context, function, job_id)
        except JobRunning:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"Job {job_id} is still running; ask again once it has ended.")
        except NoResult as ended:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                f"Job {job_id} ended {ended}, so it has no departments.")
        if result is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"There is no job {job_id}.")
        return result

    async def _from_history(self, context: grpc.aio.ServicerContext, function: Callable, *args):
        """function(*args) in a thread; a history that fails answers UNAVAILABLE."""
        try:
            return await self._in_thread(function, *args)
        except HistoryUnavailable as exc:
            await self.history_fails(exc)
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
