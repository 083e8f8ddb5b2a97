"""The hand-encoded Job reply against the protobuf library, field by field."""

from salesapi import sales_pb2
from server.departments import Departments
from server.job_replies import (DEPARTMENTS_BUDGET, PAGE_DEPARTMENTS, encode_departments,
                                encode_job, job_message)
from server.job_store import JobRecord, JobState

DEPARTMENTS = [("Toys", 5), ("", 0), ("Zero", 0), ("Returns", -3), ("Ünïcödé €", 127),
               ("x" * 200, 128), ("Max", 2**63 - 1), ("Min", -(2**63)), ("日本" * 40, 300)]


def full_record(departments) -> JobRecord:
    """A record with every field set, so that every field of Job is on the wire."""
    return JobRecord(
        job_id="a" * 32, state=JobState.COMPLETED, created_at=1_700_000_000.25,
        filename="März.csv", output_path="/out/a.csv", rejected_path="/out/a.rejected.csv",
        finished_at=1_700_000_001.5, rows_processed=12, rows_rejected=2, bytes_received=345,
        error="", department_count=len(departments), encoding="UTF-8", delimiter=";",
        departments=Departments.from_pairs(departments),
        rejected_samples=[(3, "Department Name is empty."), (9, "Number of Sales \"x\" is not "
                                                                "a whole number.")])


def library_job(record: JobRecord) -> sales_pb2.Job:
    """The same Job built by the protobuf library from every field the record has."""
    job = sales_pb2.Job(
        job_id=record.job_id, state=sales_pb2.JOB_STATE_COMPLETED, filename=record.filename,
        output_path=record.output_path, rejected_path=record.rejected_path,
        rows_processed=record.rows_processed, rows_rejected=record.rows_rejected,
        bytes_received=record.bytes_received, error=record.error,
        department_count=record.department_count, encoding=record.encoding,
        delimiter=record.delimiter, departments_complete=True,
        departments=[sales_pb2.DepartmentTotal(department=name, total_sales=total)
                     for name, total in record.departments],
        rejected_samples=[sales_pb2.RejectedRow(line=line, reason=reason)
                          for line, reason in record.rejected_samples])
    job.created_at.FromNanoseconds(int(record.created_at * 1e9))
    job.finished_at.FromNanoseconds(int(record.finished_at * 1e9))
    return job


def test_every_field_reads_back_as_the_library_writes_it():
    record = full_record(DEPARTMENTS)
    encoded = encode_job(record)
    assert sales_pb2.Job.FromString(encoded) == library_job(record)
    # Every field of Job is set, so a field the encoding forgot would show above.
    assert {field.name for field, _ in sales_pb2.Job.FromString(encoded).ListFields()} == \
        {field.name for field in sales_pb2.Job.DESCRIPTOR.fields} - {"error"}


def test_departments_are_byte_for_byte_the_librarys():
    record = full_record(DEPARTMENTS)
    departments = sales_pb2.Job(departments=library_job(record).departments).SerializeToString()
    assert encode_job(record) == job_message(record, len(DEPARTMENTS)).SerializeToString() \
        + departments
    page = encode_departments(record.departments, PAGE_DEPARTMENTS)
    assert page.data == sales_pb2.ListDepartmentsResponse(
        departments=library_job(record).departments).SerializeToString()


def test_a_reply_carries_the_departments_that_fit_in_the_budget():
    many = [(f"Department {n:07d} " + "x" * 40, n) for n in range(100_000)]  # about 6.6 MB
    record = full_record(many)
    encoded = encode_job(record)
    job = sales_pb2.Job.FromString(encoded)
    assert DEPARTMENTS_BUDGET - 80 < len(encoded) - len(job_message(record).SerializeToString()) \
        <= DEPARTMENTS_BUDGET
    assert not job.departments_complete and job.department_count == 100_000
    assert [(d.department, d.total_sales) for d in job.departments] == many[:len(job.departments)]
    # The budget for a page of ListDepartments is the same; a name as long as a row may be
    # (1 MiB) still fits, one per reply at least.
    huge = full_record([("y" * (1 << 20), 1)] * 5)
    job = sales_pb2.Job.FromString(encode_job(huge))
    assert len(job.departments) == 3 and not job.departments_complete
