"""Writes a job's files so that each appears whole or not at all."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from server.aggregation import ENCODING_WINDOWS_1252, decode_windows_1252
from server.departments import Departments

log = logging.getLogger(__name__)

OUTPUT_HEADER = b"Department Name,Total Number of Sales\n"
# Departments whose lines are made and written at a time (a few MB).
_WRITTEN_AT_ONCE = 1 << 16


# Output files are their server user's only unless the operator shares storage with a group.
PRIVATE_FILE_MODE = 0o600


def create(path: Path, mode: int = PRIVATE_FILE_MODE):
    """Opens a new file at path for writing bytes, with mode (whatever the umask). Whatever was
    at path is removed first, and never followed: in an output folder others can write to, a
    link planted at a job's temporary name must not send the job's bytes elsewhere."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    try:
        descriptor = os.open(path, flags, mode)
    except FileExistsError:
        os.unlink(path)  # a link is removed, not what it points to
        descriptor = os.open(path, flags, mode)
    os.fchmod(descriptor, mode)
    return os.fdopen(descriptor, "wb")


def temporary_path(final: Path) -> Path:
    """Where a file is written before it is renamed to `final`."""
    return final.with_name(f".{final.name}.tmp")


def _publish(temporary: Path, final: Path) -> None:
    with open(temporary, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def write_totals(path: Path, departments: Departments, mode: int = PRIVATE_FILE_MODE) -> None:
    """Writes the totals CSV to a temporary name, then renames it into place."""
    temporary = temporary_path(path)
    with create(temporary, mode) as handle:
        handle.write(OUTPUT_HEADER)
        # In slices: the lines of a million departments at once were three transient copies
        # of about 30 MB each, at the job's peak of memory.
        for start in range(0, len(departments), _WRITTEN_AT_ONCE):
            handle.write(departments.slice(start, _WRITTEN_AT_ONCE).csv_rows())
    _publish(temporary, path)


def publish_rejected(raw: Path, path: Path, encoding: str) -> None:
    """Turns the aggregator's rejected-rows file (in the input's encoding, made by create())
    into UTF-8 at path, with the raw file's mode."""
    temporary = temporary_path(path)
    if encoding == ENCODING_WINDOWS_1252:
        with open(raw, "rb") as source, create(temporary, os.stat(raw).st_mode & 0o777) as target:
            while block := source.read(1 << 20):
                target.write(decode_windows_1252(block).encode("utf-8"))
        os.unlink(raw)
    else:
        shutil.move(raw, temporary)
    _publish(temporary, path)


def remove_quietly(*paths: Path | str) -> None:
    """Deletes files that may or may not exist; a folder gone wrong is logged, not raised, so
    that cleaning up after one failure never causes another."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)
