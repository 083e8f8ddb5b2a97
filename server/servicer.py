"""SalesService over gRPC: maps requests onto the job manager and errors onto status codes."""

from __future__ import annotations

import logging

import grpc

from salesapi import sales_pb2, sales_pb2_grpc
from server.aggregator import InputError, LimitExceeded
from server.job_store import JobRecord
from server.jobs import Abandoned, JobManager, OutputError, cannot_write_message, is_job_id

log = logging.getLogger(__name__)

SERVICE_NAME = sales_pb2.DESCRIPTOR.services_by_name["SalesService"].full_name
SERVER_STOPPING_MESSAGE = "The server was stopped during the upload; please upload the file again."


def job_message(record: JobRecord) -> sales_pb2.Job:
    """The API's Job for a job record, without its departments (see job_bytes)."""
    job = sales_pb2.Job(
        job_id=record.job_id,
        state=int(record.state),
        filename=record.filename,
        output_path=record.output_path,
        rows_processed=record.rows_processed,
        rows_rejected=record.rows_rejected,
        rejected_samples=[sales_pb2.RejectedRow(line=line, reason=reason)
                          for line, reason in record.rejected_samples],
        error=record.error,
        bytes_received=record.bytes_received,
        rejected_path=record.rejected_path,
        department_count=record.department_count,
        encoding=record.encoding,
        delimiter=record.delimiter,
    )
    job.created_at.FromNanoseconds(int(record.created_at * 1e9))
    if record.finished_at is not None:
        job.finished_at.FromNanoseconds(int(record.finished_at * 1e9))
    return job


def job_bytes(record: JobRecord) -> bytes:
    """The API's Job for a job record, serialized. Its departments (millions, maybe) are
    appended already encoded (server/departments.py) instead of being built as messages and
    serialized again: a field may come in any order in the protobuf wire format."""
    return job_message(record).SerializeToString() + record.departments.wire()


def add_to_server(servicer: "SalesServicer", server: grpc.Server) -> None:
    """As sales_pb2_grpc.add_SalesServiceServicer_to_server, except that a Job is sent as the
    bytes job_bytes made (a handler without a response serializer sends bytes as they are)."""
    handlers = {
        "UploadCSV": grpc.stream_unary_rpc_method_handler(
            servicer.UploadCSV, request_deserializer=sales_pb2.UploadChunk.FromString),
        "GetJobStatus": grpc.unary_unary_rpc_method_handler(
            servicer.GetJobStatus, request_deserializer=sales_pb2.JobStatusRequest.FromString),
        "ListJobs": grpc.unary_unary_rpc_method_handler(
            servicer.ListJobs, request_deserializer=sales_pb2.ListJobsRequest.FromString,
            response_serializer=sales_pb2.ListJobsResponse.SerializeToString),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME,
                                                                          handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)


class SalesServicer(sales_pb2_grpc.SalesServiceServicer):
    """Thin: every decision about files and jobs is the job manager's."""

    def __init__(self, jobs: JobManager) -> None:
        self._jobs = jobs
        self.stopping = False

    def UploadCSV(self, request_iterator, context):
        try:
            job = self._jobs.start_upload()
        except LimitExceeded as exc:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc))
        except OutputError as exc:
            context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        context.send_initial_metadata((("job-id", job.job_id),))
        log.info("job %s started", job.job_id)
        code = message = None
        try:
            for chunk in request_iterator:
                job.set_filename(chunk.filename)
                job.feed(chunk.data)
            record = job.complete(is_abandoned=lambda: not context.is_active())
        except (grpc.RpcError, Abandoned):
            # The call is gone (its stream broke, or ended without it). Nobody reads a reply.
            record = self._abandon(job)
        except InputError as exc:
            record, code, message = job.fail(str(exc)), grpc.StatusCode.INVALID_ARGUMENT, str(exc)
        except LimitExceeded as exc:
            record, code, message = job.fail(str(exc)), grpc.StatusCode.RESOURCE_EXHAUSTED, str(exc)
        except OSError as exc:
            log.error("job %s: cannot write its files: %s", job.job_id, exc)
            message = cannot_write_message(exc)
            record, code = job.fail(message), grpc.StatusCode.UNAVAILABLE
        except Exception:
            log.exception("job %s failed unexpectedly", job.job_id)
            message = "The server hit an internal error while processing the file."
            record, code = job.fail(message), grpc.StatusCode.INTERNAL
        log.info("job %s ended %s: %s rows, %s rejected", job.job_id, record.state.name,
                 record.rows_processed, record.rows_rejected)
        if code is not None:
            context.abort(code, message)
        if not context.is_active():
            context.abort(grpc.StatusCode.CANCELLED, record.error or "cancelled")
        return job_bytes(record)

    def _abandon(self, job) -> JobRecord:
        """Ends a job whose call is gone: stopped by this server, or cancelled by its client
        (who may also have vanished). The request stream can break or just end either way."""
        return job.fail(SERVER_STOPPING_MESSAGE) if self.stopping else job.cancel()

    def GetJobStatus(self, request, context):
        if not is_job_id(request.job_id):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"\"{request.job_id[:64]}\" is not a job id; a job id is 32 "
                          "hexadecimal characters.")
        record = self._jobs.get(request.job_id)
        if record is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"There is no job {request.job_id}.")
        return job_bytes(record)

    def ListJobs(self, request, context):
        return sales_pb2.ListJobsResponse(
            jobs=[job_message(record) for record in self._jobs.list(request.limit)])
