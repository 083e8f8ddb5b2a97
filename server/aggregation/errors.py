"""The aggregator's exceptions, and the sentences for the server's limits."""

from __future__ import annotations

from wording.quantities import format_bytes


class InputError(Exception):
    """The file as a whole cannot be processed; the message is a plain sentence for the user."""


class LimitExceeded(Exception):
    """The file is past one of the server's limits; the message is a plain sentence."""


def size_text(count: int) -> str:
    """A byte count for a sentence, written as the window and the command line write sizes:
    `812 bytes`, `12.4 MB`."""
    return format_bytes(count)


def row_too_long(max_field_bytes: int) -> LimitExceeded:
    """The error for a row (or an unfinished one) longer than max_field_bytes."""
    return LimitExceeded(f"The file has a row longer than {size_text(max_field_bytes)}, "
                         "the longest accepted. Is a quote left open?")


def too_many_departments(max_departments: int) -> LimitExceeded:
    """The error for a file with more than max_departments distinct names."""
    return LimitExceeded(f"The file has more than {max_departments:,} different "
                         "departments, the most accepted in one file.")
