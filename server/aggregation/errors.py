"""The aggregator's exceptions, and the sentences for the server's limits."""

from __future__ import annotations


class InputError(Exception):
    """The file as a whole cannot be processed; the message is a plain sentence for the user."""


class LimitExceeded(Exception):
    """The file is past one of the server's limits; the message is a plain sentence."""


def size_text(count: int) -> str:
    """A byte count for a sentence: `1,000 bytes`, `2 KiB`, `10 GiB` (exact units only)."""
    for shift, unit in ((30, "GiB"), (20, "MiB"), (10, "KiB")):
        if count >= 1 << shift and count % (1 << shift) == 0:
            return f"{count >> shift:,} {unit}"
    return f"{count:,} bytes"


def row_too_long(max_field_bytes: int) -> LimitExceeded:
    """The error for a row (or an unfinished one) longer than max_field_bytes."""
    return LimitExceeded(f"The file has a row longer than {size_text(max_field_bytes)}, "
                         "the longest this server accepts. Is a quote left open?")


def too_many_departments(max_departments: int) -> LimitExceeded:
    """The error for a file with more than max_departments distinct names."""
    return LimitExceeded(f"The file has more than {max_departments:,} different "
                         "departments, the most this server accepts.")
