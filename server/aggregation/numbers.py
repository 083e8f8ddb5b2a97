"""Sales values as bytes, checked against the contract's number rule and made int64 in bulk."""

from __future__ import annotations

import numpy
import pyarrow
import pyarrow.compute

from server.departments import value_offsets

# The contract's whole number (the exact path's _NUMBER, in RE2), held to 18 digits: any 18
# digits fit in 64 bits, and a longer value (or one with leading zeros) is left to the exact
# path, which decides whether it fits.
_WS = r"[ \t\n\r\x0b\x0c]*"
_NUMBER = rf"^{_WS}[+-]?[0-9]{{1,18}}(\.0*)?{_WS}$"
# Three zeros after a point, as in `3.000`: 3 written as a decimal, or 3000 with a point
# between thousands (as European exports write it)? Rejected, for the exact path to say why.
_AMBIGUOUS = rf"^{_WS}[+-]?[0-9]{{1,3}}\.000{_WS}$"
# What is cut from such a value to leave what Arrow's cast reads: `-12` from ` +12.00 `.
_AROUND = rf"^{_WS}\+?|(\.0*)?{_WS}$"
_MAX_DIGITS = 18


def whole_numbers(values: pyarrow.Array) -> tuple[numpy.ndarray, numpy.ndarray | None]:
    """Each binary value's number (0 where there is none), and which values hold one (None:
    all do). A value holds none if the contract's rule refuses it, or it has over 18 digits."""
    plain = _digits_only(values)
    if plain is None:
        return _as_int64(values), None
    numbers = numpy.zeros(len(values), numpy.int64)
    if plain.any():
        numbers[plain] = _as_int64(values.filter(plain))
    # The rest are few in most files (signs, padding, `12.0`, bad values): RE2 judges them.
    rows = numpy.flatnonzero(~plain)
    others = values.filter(~plain)
    fit = pyarrow.compute.and_(
        pyarrow.compute.match_substring_regex(others, _NUMBER),
        pyarrow.compute.invert(pyarrow.compute.match_substring_regex(others, _AMBIGUOUS)))
    fit_rows = rows[fit.to_numpy(zero_copy_only=False)]
    if len(fit_rows):
        trimmed = pyarrow.compute.replace_substring_regex(others.filter(fit), _AROUND, "")
        numbers[fit_rows] = _as_int64(trimmed)
        plain[fit_rows] = True
    return numbers, plain


def _digits_only(values: pyarrow.Array) -> numpy.ndarray | None:
    """Per value: 1 to 18 ASCII digits and nothing else; None if every value is so."""
    offsets = value_offsets(values)
    lengths = numpy.diff(offsets)
    plain = (lengths > 0) & (lengths <= _MAX_DIGITS)
    data = values.buffers()[2]
    if data is not None and offsets[-1] > offsets[0]:
        body = numpy.frombuffer(data, numpy.uint8, int(offsets[-1] - offsets[0]), int(offsets[0]))
        others = numpy.flatnonzero(body - 48 > 9)  # below '0' wraps around to above '9'
        if len(others):
            plain[numpy.searchsorted(offsets, others + offsets[0], "right") - 1] = False
    return None if plain.all() else plain


def _as_int64(digits: pyarrow.Array) -> numpy.ndarray:
    """Values of at most 18 digits with an optional `-`, read by Arrow's cast."""
    # A binary array is a string array's layout: viewed as one, no UTF-8 check is made (the
    # values are ASCII by now).
    text = digits.view(pyarrow.string()) if digits.type == pyarrow.binary() else digits
    return pyarrow.compute.cast(text, pyarrow.int64()).to_numpy()
