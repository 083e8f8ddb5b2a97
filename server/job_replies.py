"""The service's replies on the wire: a job record as a `sales.Job`, and the handler table that
sends it.

A Job may carry millions of departments. Building them as messages and serializing them takes
seconds of Python, so `Job.departments` is encoded here with numpy, straight from the totals'
arrays, and appended to the rest of the Job serialized by protobuf (a repeated field may come in
any place in the wire format). The field numbers and wire types come from the generated
descriptors, not from this file; tests hold the result to `SerializeToString` field by field.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy
import pyarrow
import pyarrow.compute as pc
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

import grpc
from salesapi import sales_pb2, sales_pb2_grpc
from server.departments import Departments, concatenated, value_lengths
from server.job_store import JobRecord, JobState

SERVICE = sales_pb2.DESCRIPTOR.services_by_name["SalesService"]
SERVICE_NAME = SERVICE.full_name

_LENGTH_DELIMITED, _VARINT = 2, 0


def _tag(field: FieldDescriptor, wire_type: int) -> int:
    return field.number << 3 | wire_type


def _one_byte_tag(field: FieldDescriptor, wire_type: int) -> int:
    tag = _tag(field, wire_type)
    if tag >= 0x80:
        raise ValueError(f"{field.full_name}: field number {field.number} needs a longer tag")
    return tag


JOB_DEPARTMENTS = sales_pb2.Job.DESCRIPTOR.fields_by_name["departments"]
PAGE_DEPARTMENTS = sales_pb2.ListDepartmentsResponse.DESCRIPTOR.fields_by_name["departments"]
_NAME = sales_pb2.DepartmentTotal.DESCRIPTOR.fields_by_name["department"]
_TOTAL = sales_pb2.DepartmentTotal.DESCRIPTOR.fields_by_name["total_sales"]
_NAME_TAG = _one_byte_tag(_NAME, _LENGTH_DELIMITED)
_TOTAL_TAG = _one_byte_tag(_TOTAL, _VARINT)

# The departments one reply carries, in bytes: gRPC's default limit (4 MiB) less room for the
# rest of a Job (100 rejected samples of bounded reasons, paths, a 255-character file name, an
# error sentence: well under 64 KiB) and framing, so that clients with default settings in any
# language read every reply.
DEPARTMENTS_BUDGET = 4 * 1024 * 1024 - 512 * 1024


class EncodedDepartments(NamedTuple):
    """Departments in the wire format of a repeated DepartmentTotal field: the first `count`."""

    data: bytes
    count: int


def job_message(record: JobRecord, departments_sent: int = 0) -> sales_pb2.Job:
    """The API's Job for a job record, without its departments (see encode_job), saying whether
    departments_sent of them are all there are."""
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
        departments_complete=(record.state != JobState.RUNNING
                              and departments_sent >= record.department_count),
    )
    job.created_at.FromNanoseconds(int(record.created_at * 1e9))
    if record.finished_at is not None:
        job.finished_at.FromNanoseconds(int(record.finished_at * 1e9))
    return job


def encode_job(record: JobRecord, departments: EncodedDepartments | None = None) -> bytes:
    """The API's Job for a job record, serialized, with as many departments as fit in the
    budget (`departments`, when given, is what encode_departments made of them)."""
    if departments is None:
        departments = encode_departments(record.departments)
    return job_message(record, departments.count).SerializeToString() + departments.data


def encode_departments(departments: Departments, field: FieldDescriptor = JOB_DEPARTMENTS,
                       budget: int = DEPARTMENTS_BUDGET) -> EncodedDepartments:
    """The leading departments whose encoding fits in budget (at least one, if any), as the
    repeated DepartmentTotal `field`, byte for byte as protobuf writes it: per department
    its tag, a length, then `department` unless empty and `total_sales` unless zero."""
    if not len(departments):
        return EncodedDepartments(b"", 0)
    names = pc.cast(departments.names, pyarrow.binary())
    lengths = value_lengths(names).astype(numpy.uint64)
    totals = departments.totals.to_numpy(zero_copy_only=False).view(numpy.uint64)
    named, nonzero = lengths != 0, totals != 0
    body = (numpy.where(named, 1 + _varint_sizes(lengths) + lengths, 0)
            + numpy.where(nonzero, 1 + _varint_sizes(totals), 0))
    entry = 1 + _varint_sizes(body) + body
    count = max(1, int(numpy.searchsorted(numpy.cumsum(entry), budget, side="right")))
    if count < len(departments):
        names, lengths, totals = names.slice(0, count), lengths[:count], totals[:count]
        named, nonzero, body = named[:count], nonzero[:count], body[:count]
    length_bytes, length_sizes = _varints(lengths)
    total_bytes, total_sizes = _varints(totals)
    body_bytes, body_sizes = _varints(body)
    field_tag = _one_byte_tag(field, _LENGTH_DELIMITED)
    before = _rows_of_bytes([(_constant(field_tag, count), numpy.ones(count, numpy.int64)),
                             (body_bytes, body_sizes),
                             (_constant(_NAME_TAG, count), named.astype(numpy.int64)),
                             (length_bytes, numpy.where(named, length_sizes, 0))])
    after = _rows_of_bytes([(_constant(_TOTAL_TAG, count), nonzero.astype(numpy.int64)),
                            (total_bytes, numpy.where(nonzero, total_sizes, 0))])
    return EncodedDepartments(
        concatenated(pc.binary_join_element_wise(before, names, after, b"")), count)


def _varint_sizes(values: numpy.ndarray) -> numpy.ndarray:
    """How many bytes each uint64 takes as a varint."""
    sizes = numpy.ones(len(values), numpy.uint64)
    for bits in range(7, 64, 7):
        sizes += values >= numpy.uint64(1 << bits)
    return sizes


def _constant(byte: int, count: int) -> numpy.ndarray:
    return numpy.full((count, 1), byte, numpy.uint8)


def _varints(values: numpy.ndarray) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Each uint64 as a protobuf varint: a byte matrix with a row per value and as many
    columns as the longest varint, and each varint's size."""
    values = values.astype(numpy.uint64)
    columns = []
    sizes = numpy.ones(len(values), numpy.int64)
    while True:
        rest = values >> numpy.uint64(7)
        more = rest != 0
        low = (values & numpy.uint64(0x7F)).astype(numpy.uint8)
        if not more.any():
            columns.append(low)
            return numpy.stack(columns, axis=1), sizes
        columns.append(low | (more.view(numpy.uint8) << 7))
        sizes += more
        values = rest


def _rows_of_bytes(parts: list[tuple[numpy.ndarray, numpy.ndarray]]) -> pyarrow.Array:
    """A binary array whose row i joins, for each (matrix, sizes) part, the first sizes[i]
    bytes of matrix row i."""
    matrix = numpy.concatenate([bytes_ for bytes_, _ in parts], axis=1)
    keep = numpy.concatenate([numpy.arange(bytes_.shape[1]) < sizes[:, None]
                              for bytes_, sizes in parts], axis=1)
    offsets = numpy.zeros(len(matrix) + 1, numpy.int32)
    numpy.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pyarrow.Array.from_buffers(pyarrow.binary(), len(matrix),
                                      [None, pyarrow.py_buffer(offsets),
                                       pyarrow.py_buffer(matrix[keep])])


def serialize(reply: Message | bytes) -> bytes:
    """Every reply of the service: a message is serialized; bytes made by encode_job are sent as
    they are."""
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, Message):
        return reply.SerializeToString()
    raise TypeError(f"a reply must be a message or encoded bytes, not {type(reply).__name__}")


def add_to_server(servicer: sales_pb2_grpc.SalesServiceServicer, server: grpc.aio.Server) -> None:
    """Registers every RPC of SalesService, as the generated add_SalesServiceServicer_to_server
    does, but with `serialize` for replies."""
    handlers = {}
    for method in SERVICE.methods:
        make = {(False, False): grpc.unary_unary_rpc_method_handler,
                (True, False): grpc.stream_unary_rpc_method_handler,
                (False, True): grpc.unary_stream_rpc_method_handler,
                (True, True): grpc.stream_stream_rpc_method_handler}[
                    (method.client_streaming, method.server_streaming)]
        request_type = message_factory.GetMessageClass(method.input_type)
        handlers[method.name] = make(getattr(servicer, method.name),
                                     request_deserializer=request_type.FromString,
                                     response_serializer=serialize)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE_NAME,
                                                                          handlers),))
    server.add_registered_method_handlers(SERVICE_NAME, handlers)
