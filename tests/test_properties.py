"""Property-based: hypothesis writes files (quoting, delimiters, encodings, bad rows, blank
lines, chunkings) and the aggregator must agree with the plain reference implementation."""

import io
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reference
from exports import Shape, exported_file
from server.aggregation import Aggregator, InputError, Tuning

NAME_CHARS = st.sampled_from(list("abcXYZ 019-=@.,;|\t\"\n\réüß€日"))
VALUES = st.one_of(
    st.integers(-(2**63), 2**63 - 1).map(str),
    st.integers(-1000, 1000).map(lambda n: f"  {n} "),
    st.integers(0, 99).map(lambda n: f"{n}.00"),
    st.integers(0, 99).map(lambda n: f"+{n}"),
    st.sampled_from(["", "abc", "1.5", "0x10", "1e3", "99999999999999999999", " "]),
)


@st.composite
def csv_files(draw):
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    columns = draw(st.permutations(["Department Name", "Number of Sales", "Date"]))
    quote_all = draw(st.booleans())

    def cell(value: str) -> str:
        if quote_all or any(ch in value for ch in (delimiter, '"', "\n", "\r")) or (
                value and value[0] == " "):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [delimiter.join(cell(c) for c in columns)]
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.integers(0, 20))
        if kind == 0:
            lines.append("")
            continue
        if kind == 1:
            lines.append(delimiter * (len(columns) - 1))
            continue
        row = {"Department Name": draw(st.text(NAME_CHARS, max_size=12)),
               "Number of Sales": draw(VALUES), "Date": "2026-01-02"}
        cells = [cell(row[c]) for c in columns]
        if kind == 2:
            cells = cells[:-1]
        lines.append(delimiter.join(cells))
    text = end.join(lines) + (end if draw(st.booleans()) else "")
    if encoding == "cp1252":
        text = text.replace("日", "?")
        return text.encode("cp1252")
    return text.encode(encoding)


def aggregate(data: bytes, chunk: int, tuning: Tuning, columnar: bool):
    aggregator = Aggregator(tuning=tuning, columnar=columnar, rejected_out=io.BytesIO())
    try:
        for start in range(0, len(data), chunk):
            aggregator.feed(data[start:start + chunk])
        return aggregator.finish()
    except InputError as exc:
        return exc


# Tunings beyond the block size: each block's rows kept ungrouped, tables grouped in two halves,
# partial sums merged after every block, odd blocks retried in pieces of a row or so.
TUNINGS = st.builds(dict, rows_to_judge_grouping=st.sampled_from([1, 4096]),
                    parts=st.sampled_from([1, 2, 16]),
                    partial_rows=st.sampled_from([1, 4 << 20]),
                    piece_bytes=st.sampled_from([1, 256 * 1024]))


# PROPERTY_EXAMPLES=3000 for a longer hunt; CI runs 200.
EXAMPLES = int(os.environ.get("PROPERTY_EXAMPLES", "200"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_files(), chunk=st.integers(1, 300), block=st.sampled_from([16, 64, 4096]),
       columnar=st.booleans(), knobs=TUNINGS)
def test_agrees_with_the_reference(data, chunk, block, columnar, knobs):
    expected = reference.aggregate(data)
    outcome = aggregate(data, chunk, Tuning(block_size=block, **knobs), columnar)
    if expected.error is not None:
        assert isinstance(outcome, InputError), (expected.error, outcome)
        return
    assert not isinstance(outcome, InputError), outcome
    assert outcome.totals == expected.totals
    assert outcome.rows_processed == expected.rows_processed
    assert outcome.rows_rejected == len(expected.rejected)
    assert [(r.line, r.reason) for r in outcome.rejected_samples] == expected.rejected[:100]


# Files as people export them, hundreds of rows in blocks of a few rows to a hundred: the
# columnar path reads most rows, quoted or not, and hands the odd ones to the exact path.
EXPORT_SHAPES = st.builds(
    Shape, delimiter=st.sampled_from([",", ";"]), encoding=st.sampled_from(["utf-8", "cp1252"]),
    end=st.sampled_from(["\n", "\r\n"]), quote_all=st.booleans(),
    delimiter_names=st.sampled_from([0, 0.05, 0.3]), line_breaks=st.sampled_from([0, 0.01, 0.05]),
    bad_values=st.sampled_from([0, 0.01, 0.05]), oddities=st.sampled_from([0, 0.01, 0.05]))


@settings(max_examples=max(1, EXAMPLES // 2), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(shape=EXPORT_SHAPES, rows=st.integers(50, 600), seed=st.integers(0, 2**32 - 1),
       chunk=st.sampled_from([1, 7, 300, 4096]), block=st.sampled_from([64, 512, 4096]),
       knobs=TUNINGS)
def test_exported_files_agree_with_the_reference(shape, rows, seed, chunk, block, knobs):
    data = exported_file(shape, rows, seed)
    expected = reference.aggregate(data)
    outcome = aggregate(data, chunk, Tuning(block_size=block, **knobs), columnar=True)
    assert expected.error is None and not isinstance(outcome, InputError), outcome
    assert outcome.totals == expected.totals
    assert outcome.rows_processed == expected.rows_processed
    assert outcome.rows_rejected == len(expected.rejected)
    assert [(r.line, r.reason) for r in outcome.rejected_samples] == expected.rejected[:100]
