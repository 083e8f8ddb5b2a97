"""Streaming per-department totals of a sales CSV: bytes in any chunking, totals at the end."""

from server.aggregation.aggregator import Aggregator, Rejection, Result
from server.aggregation.encoding import (ENCODING_UTF8, ENCODING_UTF16, ENCODING_WINDOWS_1252,
                                         decode_windows_1252)
from server.aggregation.errors import InputError, LimitExceeded, size_text
from server.aggregation.tuning import BLOCK_SIZE, Tuning

__all__ = [
    "Aggregator", "Result", "Rejection", "Tuning", "InputError", "LimitExceeded", "size_text",
    "decode_windows_1252", "ENCODING_UTF8", "ENCODING_UTF16", "ENCODING_WINDOWS_1252",
    "BLOCK_SIZE",
]
