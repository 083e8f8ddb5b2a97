"""The streaming aggregator over small real files: every input rule, every chunking."""

import io
import tracemalloc

import pyarrow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from server.aggregation import (BLOCK_SIZE, Aggregator, InputError, LimitExceeded, Rejection,
                                Tuning)
from server.departments import byte_order
from server.limits import Limits


CHUNK_SIZES = [None, 1, 2, 3, 7, 8192]
BLOCK_SIZES = [1, 7, 8192, 1 << 20]
HEADER = "Date,Department Name,Number of Sales\n"
# Every knob at its smallest: each block's rows kept ungrouped, partial sums in three parts
# merged after every block, odd blocks retried in one-row pieces.
TINY = dict(rows_to_judge_grouping=1, parts=3, partial_rows=1, piece_bytes=1)


def aggregate(data: bytes, chunk: int | None = None, block: int = 1 << 20, tiny: bool = False,
              **kwargs):
    aggregator = Aggregator(tuning=Tuning(block_size=block, **(TINY if tiny else {})), **kwargs)
    if chunk is None:
        aggregator.feed(data)
    else:
        for start in range(0, len(data), chunk):
            aggregator.feed(data[start:start + chunk])
    return aggregator.finish()


def same_in_every_chunking(data: bytes):
    """Aggregates data whole and in every chunk and block size, with default and tiny tuning
    and on the exact path alone; all results must agree."""
    expected = aggregate(data)
    for chunk in CHUNK_SIZES:
        for block in BLOCK_SIZES:
            assert aggregate(data, chunk, block) == expected, f"chunk={chunk} block={block}"
    for block in (100, 1 << 20):
        assert aggregate(data, 3, block, tiny=True) == expected, f"tiny block={block}"
    for block in (7, 100, 1 << 20):
        assert aggregate(data, 3, block, columnar=False) == expected, f"exact block={block}"
    return expected


# (rule, file bytes, expected totals in output order)
CASES = [
    ("header by name, any order, extra columns",
     b"Region,Number of Sales,Note,Department Name\nN,3,x,Toys\nS,4,y,Toys\n", [("Toys", 7)]),
    ("header case-insensitive with white space and BOM",
     b"\xef\xbb\xbf  date , DEPARTMENT NAME ,number of sales \nd,Toys,2\n", [("Toys", 2)]),
    ("quoted header cells",
     b'"Date","Department Name","Number of Sales"\n"d","Toys","2"\n', [("Toys", 2)]),
    ("semicolon delimiter", b"Date;Department Name;Number of Sales\nd;Toys;2\nd;Food;1\n",
     [("Food", 1), ("Toys", 2)]),
    ("tab delimiter", b"Date\tDepartment Name\tNumber of Sales\nd\tToys, Games\t2\n",
     [("Toys, Games", 2)]),
    ("pipe delimiter", b"Date|Department Name|Number of Sales\nd|Toys|2\n", [("Toys", 2)]),
    ("comma wins when the header also holds semicolons",
     b"Date;x,Department Name,Number of Sales\nd;1,Toys,2\n", [("Toys", 2)]),
    ("UTF-8", (HEADER + "d,Café,2\nd,日本,3\n").encode(), [("Café", 2), ("日本", 3)]),
    ("UTF-8 with BOM", b"\xef\xbb\xbf" + (HEADER + "d,Café,2\n").encode(), [("Café", 2)]),
    ("UTF-16 LE with BOM", (HEADER + "d,Café,2\nd,日本,3\n").encode("utf-16"),
     [("Café", 2), ("日本", 3)]),
    ("UTF-16 BE with BOM", b"\xfe\xff" + (HEADER + "d,Café,2\n").encode("utf-16-be"),
     [("Café", 2)]),
    ("Windows-1252", (HEADER + "d,Café,2\nd,Bücher – neu,3\n").encode("cp1252"),
     [("Bücher – neu", 3), ("Café", 2)]),
    ("Windows-1252 after a long valid UTF-8 stretch",
     # 100 rows: the Windows-1252 byte comes well after the first 512 bytes the encoding is
     # guessed from (1,000 rows only made every chunking take ten times as long).
     (HEADER + "d,Plain,1\n" * 100).encode() + "d,Café,2\n".encode("cp1252"),
     [("Café", 2), ("Plain", 100)]),
    ("CRLF line endings", b"Date,Department Name,Number of Sales\r\nd,Toys,2\r\nd,Toys,3\r\n",
     [("Toys", 5)]),
    ("CR line endings", b"Date,Department Name,Number of Sales\rd,Toys,2\rd,Food,3\r",
     [("Food", 3), ("Toys", 2)]),
    ("no final newline", b"Date,Department Name,Number of Sales\nd,Toys,2\nd,Toys,3",
     [("Toys", 5)]),
    ("quoted delimiter, doubled quote, line break",
     b'Date,Department Name,Number of Sales\nd,"Toys, ""Big""\nand small",2\nd,"A,B",1\n',
     [("A,B", 1), ('Toys, "Big"\nand small', 2)]),
    ("quoted CRLF line break", b'Department Name,Number of Sales\r\n"Two\r\nLines",4\r\n',
     [("Two\r\nLines", 4)]),
    ("a quote inside an unquoted field is a character", b'Department Name,Number of Sales\n'
     b'32" TVs,2\n', [('32" TVs', 2)]),
    ("names trimmed, case kept", b"Department Name,Number of Sales\n  Toys ,1\ntoys,2\n\tToys\t,3\n",
     [("Toys", 4), ("toys", 2)]),
    ("sorted case-insensitively, ties by exact name",
     b"Department Name,Number of Sales\nb,1\nB,1\na,1\nC,1\n", [("a", 1), ("B", 1), ("b", 1),
                                                              ("C", 1)]),
    ("numbers: sign, white space, integral decimals, negatives",
     b"Department Name,Number of Sales\nT, +5 ,\nT,12.0\nT,-3\nT, 7.00\nR,-2\n",
     [("R", -2), ("T", 21)]),
    ("64-bit extremes", b"Department Name,Number of Sales\nMax,9223372036854775807\n"
     b"Min,-9223372036854775808\n", [("Max", 9223372036854775807),
                                     ("Min", -9223372036854775808)]),
    ("blank and all-empty rows ignored",
     b"\n\nDepartment Name,Number of Sales\n\nT,1\n,\n , \n\r\n,,,\nT,2\n\n", [("T", 3)]),
    ("a sum that leaves and comes back into 64 bits",
     b"Department Name,Number of Sales\nT,9223372036854775807\nT,1\nT,-1\n",
     [("T", 9223372036854775807)]),
    ("formula-like names are kept as they are", b"Department Name,Number of Sales\n=SUM(A1),1\n",
     [("=SUM(A1)", 1)]),
    ("quotes inside unquoted fields among quoted fields",
     b'Department Name,Number of Sales\n32" TV,1\n"A, B",2\nTV 32",3\n"C\nD",4\n5"x7",5\n',
     [('32" TV', 1), ('5"x7"', 5), ("A, B", 2), ("C\nD", 4), ('TV 32"', 3)]),
    ("blank and all-empty rows among quoted fields",
     b'Department Name,Number of Sales\r\n"T",1\r\n\r\n,\r\n"",""\r\n"T","2"\r\n', [("T", 3)]),
    ("values with signs, padding, decimals and leading zeros among plain ones",
     b"Department Name,Number of Sales\nT,1\nT,+7\nT, 8 \nT,12.0\nT,007\n"
     b"T,00000000000000000000042\nT,-0\n", [("T", 77)]),
]


@pytest.mark.parametrize("rule,data,expected", CASES, ids=[case[0] for case in CASES])
def test_input_rule(rule, data, expected):
    result = same_in_every_chunking(data)
    assert result.totals == expected
    assert result.rows_rejected == 0, result.rejected_samples


def test_reports_encoding_and_delimiter():
    assert aggregate((HEADER + "d,Café,2\n").encode("cp1252")).encoding == "Windows-1252"
    assert aggregate((HEADER + "d,Café,2\n").encode("utf-16")).encoding == "UTF-16"
    result = aggregate(b"Department Name|Number of Sales\nT|1\n")
    assert (result.encoding, result.delimiter) == ("UTF-8", "|")


def test_chunk_edges_split_characters_line_ends_and_quotes():
    """8 KB edges land inside a multi-byte character, a CRLF pair, a quoted line break and a
    doubled quote; the result must not depend on where the edges are."""
    edge = 8192
    out = bytearray(b"Department Name,Number of Sales\r\n")
    expected: dict[str, int] = {}

    def pad_to(offset_before_edge: int) -> None:
        filler = b"Filler,1\r\n"
        while len(out) % edge + len(filler) <= edge - offset_before_edge - len(filler):
            out.extend(filler)
            expected["Filler"] = expected.get("Filler", 0) + 1
        gap = edge - offset_before_edge - len(out) % edge
        if gap > 0:
            row = b"F" + b"x" * max(0, gap - 5) + b",1\r\n"
            out.extend(row[:gap] if len(row) > gap else row)
            name = row[:-4].decode()
            expected[name] = expected.get(name, 0) + 1

    pad_to(1)
    assert len(out) % edge == edge - 1
    out.extend("€uro,2\r\n".encode())  # the 3-byte € starts 1 byte before the edge
    expected["€uro"] = 2
    pad_to(7)
    assert len(out) % edge == edge - 7
    out.extend(b"CRLF,3\r\n")  # the edge falls between \r and \n
    expected["CRLF"] = 3
    pad_to(8)
    assert len(out) % edge == edge - 8
    out.extend(b'"Quoted\r\nBreak",4\r\n')  # the edge falls inside the quoted CRLF
    expected["Quoted\r\nBreak"] = 4
    pad_to(6)
    assert len(out) % edge == edge - 6
    out.extend(b'"Say ""Hi""",5\r\n')  # the edge falls between the two quotes of ""
    expected['Say "Hi"'] = 5
    data = bytes(out)
    for chunk in (8192, 1, 3, 4096):
        for block in (8192, 8193, 1 << 20):
            result = aggregate(data, chunk, block)
            assert dict(result.totals) == {k: v for k, v in expected.items()}
            assert result.rows_rejected == 0


BAD_ROWS = (
    b"Date,Department Name,Number of Sales\r\n"  # 1
    b"d,Toys,5\r\n"  # 2
    b"d,Toys,abc\r\n"  # 3
    b"d,,4\r\n"  # 4
    b"\r\n"  # 5 blank, ignored
    b"d,Toys\r\n"  # 6 too few fields
    b'd,"Multi\r\nline",1.5\r\n'  # 7-8: starts on line 7
    b"d,Food,99999999999999999999\r\n"  # 9
    b"d,Food,\r\n"  # 10
    b"d,Food,1e3\r\n"  # 11
    b'd,"Bad"quote,1\r\n'  # 12
    b"d,Food,7\r\n"  # 13
    b"d,  ,3\r\n"  # 14 white space only
)


EXPECTED_REJECTIONS = [
    Rejection(3, 'Number of Sales "abc" is not a whole number.'),
    Rejection(4, "Department Name is empty."),
    Rejection(6, "The row has 2 fields; expected at least 3."),
    Rejection(7, 'Number of Sales "1.5" is not a whole number.'),
    Rejection(9, "Number of Sales 99999999999999999999 is too large; the largest total that "
                 "can be kept is 9,223,372,036,854,775,807."),
    Rejection(10, "Number of Sales is empty; expected a whole number."),
    Rejection(11, 'Number of Sales "1e3" is not a whole number.'),
    Rejection(12, "A quoted field has text after its closing quote; expected the delimiter or "
                  "the end of the line."),
    Rejection(14, "Department Name is empty."),
]


def test_bad_rows_are_skipped_with_their_physical_line_and_reason():
    result = same_in_every_chunking(BAD_ROWS)
    assert result.totals == [("Food", 7), ("Toys", 5)]
    assert result.rows_processed == 2
    assert result.rows_rejected == 9
    assert result.rejected_samples == EXPECTED_REJECTIONS


def rejected_file(data: bytes, chunk: int | None = None, block: int = 1 << 20, **kwargs) -> bytes:
    out = io.BytesIO()
    aggregator = Aggregator(rejected_out=out, tuning=Tuning(block_size=block), **kwargs)
    for start in range(0, len(data), chunk or len(data)):
        aggregator.feed(data[start:start + (chunk or len(data))])
    aggregator.finish()
    assert not out.closed  # handed back open to its owner
    return out.getvalue()


def test_rejected_rows_file_lists_every_rejected_row():
    written = rejected_file(BAD_ROWS)
    lines = written.decode().split("\n")
    assert lines[0] == "Line,Reason,Raw Row"
    assert lines[1] == '3,"Number of Sales ""abc"" is not a whole number.","d,Toys,abc"'
    assert lines[4] == '7,"Number of Sales ""1.5"" is not a whole number.","d,""Multi\r'
    assert lines[5] == 'line"",1.5"'
    assert written.decode().count("\n") == 1 + 9 + 1  # header, rows, the quoted break
    for chunk in (1, 7):
        for block in (1, 16, 100):
            assert rejected_file(BAD_ROWS, chunk, block) == written, (chunk, block)
            assert rejected_file(BAD_ROWS, chunk, block, columnar=False) == written
    assert rejected_file(b"Department Name,Number of Sales\nT,1\n") == b""


def test_rejected_rows_file_keeps_the_files_own_bytes():
    data = "Department Name,Number of Sales\nCafé,x\nT,1\n".encode("cp1252")
    assert rejected_file(data) == ('Line,Reason,Raw Row\n'
                                   '2,"Number of Sales ""x"" is not a whole number.","Café,x"\n'
                                   ).encode("cp1252")


QUOTED_BAD_ROWS = (
    b'"Date","Department Name","Number of Sales"\r\n'  # 1
    b'"d","Toys, Games","5"\r\n'  # 2
    b'"d","Two\r\nLines","n/a"\r\n'  # 3-4
    b'"d","Toys, Games","7"\r\n'  # 5
    b'"d","","3"\r\n'  # 6
    b'"d","Food","1"\r\n'  # 7
)


def test_bad_rows_among_quoted_fields_keep_their_line_and_bytes():
    """In a block read whole by the columnar path, the rows it cannot judge are reported with
    the physical line they start on (after a quoted line break) and their own bytes."""
    result = same_in_every_chunking(QUOTED_BAD_ROWS)
    assert result.totals == [("Food", 1), ("Toys, Games", 12)]
    assert result.rejected_samples == [
        Rejection(3, 'Number of Sales "n/a" is not a whole number.'),
        Rejection(6, "Department Name is empty.")]
    written = rejected_file(QUOTED_BAD_ROWS)
    assert written == (b'Line,Reason,Raw Row\n'
                       b'3,"Number of Sales ""n/a"" is not a whole number.",'
                       b'"""d"",""Two\r\nLines"",""n/a"""\n'
                       b'6,Department Name is empty.,"""d"","""",""3"""\n')
    for chunk in (1, 7, None):
        for block in (16, 64, 1 << 20):
            assert rejected_file(QUOTED_BAD_ROWS, chunk, block) == written, (chunk, block)


def test_only_the_first_hundred_samples_are_kept():
    data = b"Department Name,Number of Sales\n" + b"T,x\n" * 250 + b"T,1\n"
    result = aggregate(data)
    assert result.rows_rejected == 250
    assert len(result.rejected_samples) == 100
    assert result.rejected_samples[-1] == Rejection(101, 'Number of Sales "x" is not a whole number.')
    assert result.totals == [("T", 1)]


def test_unclosed_quote_is_one_bad_row():
    data = b'Department Name,Number of Sales\nT,1\n"Open,2\nU,3\n'
    result = same_in_every_chunking(data)
    assert result.totals == [("T", 1)]
    assert result.rejected_samples == [Rejection(3, "A quoted field is never closed.")]


@pytest.mark.parametrize("data,message", [
    (b"", "The file is empty."),
    (b"\n\r\n  \n", "The file holds only blank lines; expected a header row with "
                    "\"Department Name\" and \"Number of Sales\"."),
    (b"Department Name,Number of Sales\n", "The file has a header row but no data rows."),
    (b"Department Name,Number of Sales\r\n\r\n,,\r\n", "The file has a header row but no data rows."),
    (b"Date,Dept,Number of Sales\nd,T,1\n", "The header row (line 1) has no \"Department Name\" "
     "column. Columns found: \"Date\", \"Dept\", \"Number of Sales\"."),
    (b"Date;Department;Sales\nd;T;1\n", "The header row (line 1) has no \"Department Name\" and "
     "\"Number of Sales\" columns. Columns found: \"Date\", \"Department\", \"Sales\"."),
    (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 600, "This looks like an Excel workbook or a zip "
     "archive, not a CSV file. In Excel, use File > Save As and choose \"CSV UTF-8\"."),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file holds data that is not text (from "
     "character 9 on), so it is not a CSV file. If a program made it, save or export it as CSV."),
    ("Department Name,Number of Sales\nT,1\n".encode("utf-16-le"), "This file looks like "
     "UTF-16 text without a byte-order mark. Save it as UTF-8 (or UTF-16 with a byte-order mark) "
     "and try again."),
    (b"\xff\xfe" + "Department Name,Number of Sales\nT,1\n".encode("utf-16-le") + b"\x00\xd8",
     "The file starts with a UTF-16 byte-order mark but is not valid UTF-16 (unexpected end of "
     "data)."),
    (b"Department Name,Number of Sales\nT,9223372036854775807\nT,1\n", "The total for "
     "department \"T\" comes to 9,223,372,036,854,775,808, beyond the largest total that can be "
     "kept (9,223,372,036,854,775,807)."),
    (b"Department Name,Number of Sales\nT,-9223372036854775808\nT,-1\n", "The total for "
     "department \"T\" comes to -9,223,372,036,854,775,809, beyond the largest total that can be "
     "kept (-9,223,372,036,854,775,808)."),
    (b"x" * (2 << 20), "The first line of the file is longer than 1.0 MB with no line break, so "
     "it is not a CSV header row."),
], ids=["empty", "blank lines", "header only", "header and empty rows", "one column missing",
        "both columns missing", "xlsx", "png", "utf-16 without bom", "broken utf-16",
        "total overflow", "negative total overflow", "2 MB first line"])
def test_whole_file_failures(data, message):
    for chunk in (None, 1, 7, 8192):
        if chunk == 1 and len(data) > 100_000:
            continue
        with pytest.raises(InputError) as info:
            aggregate(data, chunk, 8192)
        assert str(info.value) == message


def test_an_unquoted_thousands_separator_is_found_in_any_column():
    data = b"Number of Sales,Department Name,Date\n1,200,Garden,2024-01-01\n7,Toys,2024-01-01\n"
    for columnar in (True, False):
        result = aggregate(data, columnar=columnar)
        assert result.totals == [("Toys", 7)]
        assert result.rejected_samples == [Rejection(2, 'Number of Sales "1,200" is written '
                                                     'with a thousands separator (","); write '
                                                     "it without one: 1200.")]


@pytest.mark.parametrize("value, reason", [
    ('"1,200"', 'Number of Sales "1,200" is written with a thousands separator (","); write it '
                "without one: 1200."),
    ("1.200", 'Number of Sales "1.200" is written with a thousands separator ("."); write it '
              "without one: 1200."),
    ('"-12,345,678"', 'Number of Sales "-12,345,678" is written with a thousands separator '
                      '(","); write it without one: -12345678.'),
    ("1,200", 'Number of Sales "1,200" is written with a thousands separator (","); write it '
              "without one: 1200."),  # unquoted: the row has a field more than the header
    ("-12,345,678", 'Number of Sales "-12,345,678" is written with a thousands separator '
                    '(","); write it without one: -12345678.'),
    ("12,3", None),  # an extra column of "3", ignored as extra columns are: 12
    ("9" * 5000, "Number of Sales 99999999999999999999...99999999 (5,000 characters) is too "
                 "large; the largest total that can be kept is 9,223,372,036,854,775,807."),
    ("0" * 30 + "12", None),  # leading zeros: a small number
    ("3.000", 'Number of Sales "3.000" could be 3 or 3000 (a point between thousands); write '
              "the number without a point."),
    ("12.00", None),  # 12: not the thousands pattern
], ids=["comma", "point", "several groups", "unquoted comma", "unquoted groups",
        "an extra column", "5000 digits", "leading zeros", "ambiguous", "decimal zeros"])
def test_numbers_people_write_are_read_or_rejected_with_their_reason(value, reason):
    data = f"Department Name,Number of Sales\nToys,{value}\nToys,1\n".encode()
    for columnar in (True, False):
        result = aggregate(data, columnar=columnar)
        if reason is None:
            assert result.totals == [("Toys", int(float(value.split(",")[0])) + 1)]
            assert not result.rejected_samples
        else:
            assert result.totals == [("Toys", 1)]
            assert result.rejected_samples == [Rejection(2, reason)]


@pytest.mark.parametrize("rows, message", [
    ("Toys,1.200\n", "No row of the file could be used: its only data row (line 2) was "
                     'rejected. Number of Sales "1.200" is written with a thousands separator '
                     '("."); write it without one: 1200.'),
    ("Toys,1.200\nFood,3.400\nBooks,n/a\n",
     "No row of the file could be used: all 3 data rows were rejected, most of them (2) for "
     'this reason (first on line 2): Number of Sales "1.200" is written with a thousands '
     'separator ("."); write it without one: 1200.'),
    (",5\n,6\n", "No row of the file could be used: all 2 data rows were rejected, each for the "
                 "same reason (first on line 2): Department Name is empty."),
], ids=["one row", "mostly thousands", "all names empty"])
def test_a_file_without_one_usable_row_fails_with_its_commonest_reason(rows, message):
    data = f"Department Name,Number of Sales\n{rows}".encode()
    for columnar in (True, False):
        with pytest.raises(InputError) as info:
            aggregate(data, columnar=columnar)
        assert str(info.value) == message


def test_too_many_departments():
    data = b"Department Name,Number of Sales\nA,1\nB,1\nA,1\nC,1\n"
    assert len(aggregate(data, max_departments=3).totals) == 3
    with pytest.raises(LimitExceeded, match="more than 2 different departments"):
        aggregate(data, max_departments=2)


@pytest.mark.parametrize("shape", ["every row new", "a new name after many known ones"])
def test_too_many_departments_refused_as_they_arrive(shape):
    """Past the limit, feed() raises within a few blocks of the first name too many, not at
    finish(): whether each block alone holds more names than allowed, or every block stays
    within the limit and only the file as a whole does not."""
    limit, block = 1000, 64 * 1024
    header = b"Department Name,Number of Sales\n"
    if shape == "every row new":
        rows = [b"Department %07d %s,1\n" % (i, b"x" * 40) for i in range(200_000)]
        first_too_many = limit  # the row holding the (limit + 1)-th name
    else:
        known = [b"Known %04d,1\n" % (i % limit) for i in range(100_000)]
        rows = known + [b"Newcomer,1\n"] + known
        first_too_many = len(known)
    aggregator = Aggregator(max_departments=limit, tuning=Tuning(block_size=block))
    aggregator.feed(header)
    fed = 0
    with pytest.raises(LimitExceeded, match="more than 1,000 different departments"):
        for start in range(0, len(rows), 100):
            aggregator.feed(b"".join(rows[start:start + 100]))
            fed = start + 100
    bytes_after = sum(map(len, rows[first_too_many:fed]))
    assert bytes_after <= 8 * block, bytes_after


def test_never_holds_the_file():
    """Memory is the totals plus about one block: feeding 14 MB in small chunks, the interpreter
    never holds more than a few blocks' worth of bytes at once."""
    block = 64 * 1024
    header = b"Department Name,Number of Sales\n"
    row = b"Toys,1\n" * 1000
    aggregate(header + row * 20, 8192, block)  # first use of Arrow's grouping imports modules
    aggregator = Aggregator(tuning=Tuning(block_size=block))
    tracemalloc.start()
    try:
        aggregator.feed(header)
        for _ in range(2000):  # 14 MB
            aggregator.feed(row)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * block + len(row), peak
    assert aggregator.finish().totals == [("Toys", 2_000_000)]


@pytest.mark.parametrize("data", [
    b"Department Name,Number of Sales\nT,1\n" + b"x" * 3000 + b",1\n",
    b"Department Name,Number of Sales\nT,1\n\"" + b"y\n" * 1500 + b"\",1\n",
], ids=["long line", "long quoted field over many lines"])
def test_rows_longer_than_the_field_limit(data):
    for chunk, block in ((None, 1000), (7, 1000), (1000, 1000), (None, 1 << 20), (1000, 1 << 20)):
        with pytest.raises(LimitExceeded) as info:
            aggregate(data, chunk, block, max_field_bytes=2048)
        assert str(info.value) == ("The file has a row longer than 2.0 KB, the longest "
                                   "accepted. Is a quote left open?")
    assert aggregate(data.replace(b"x" * 3000, b"x" * 10).replace(b"y\n" * 1500, b"y\n"),
                     max_field_bytes=2048).rows_processed == 2


def test_many_departments_are_kept_as_rows_and_still_add_up():
    """A file where nearly every row names a new department: blocks stop being grouped one by
    one (rows are kept and grouped together), and the totals match the plain reference, with a
    padded name and upper and lower case among them, however often partial sums are merged."""
    rows = [f"{('Dept' if i % 3 else 'dept')} {i % 20_000:05d},{i % 7 - 3}" for i in range(30_000)]
    rows[12_345] = "  Dept 00001 ,5"
    data = ("Department Name,Number of Sales\n" + "\n".join(rows) + "\n").encode()
    expected = reference.aggregate(data).totals
    departments = len({row.split(",")[0].strip() for row in rows})
    assert departments > 20_000
    for tuning in (Tuning(block_size=128 * 1024),  # 9,000 rows a block: judged ungroupable
                   Tuning(block_size=128 * 1024, partial_rows=1, parts=1),
                   Tuning(block_size=16 * 1024, rows_to_judge_grouping=1, partial_rows=50_000)):
        aggregator = Aggregator(tuning=tuning)
        for start in range(0, len(data), 8192):
            aggregator.feed(data[start:start + 8192])
        result = aggregator.finish()
        assert result.totals == expected, tuning
        assert aggregator.department_count == len(result.totals) == departments, tuning


@given(st.lists(st.binary(max_size=30).map(lambda key: key.replace(b"\x00", b"\x01")),
                max_size=300), st.integers(0, 5))
@settings(max_examples=300, deadline=None)
def test_byte_order_sorts_like_python(keys, start):
    values = pyarrow.array(keys, pyarrow.binary()).slice(min(start, len(keys)))
    order, tied = byte_order(values, with_ties=True)
    ordered = [values[int(i)].as_py() for i in order]
    assert ordered == sorted(values.to_pylist())
    assert tied.tolist() == [place for place, key in enumerate(ordered)
                             if ordered.count(key) > 1]


def test_a_byte_that_is_not_utf8_at_a_block_edge_makes_the_file_windows_1252():
    """A Windows-1252 é (0xE9) is a UTF-8 lead byte: followed by plain ASCII, wherever a block
    edge falls next to it (blocks without a line end are cut anywhere), the file cannot be
    UTF-8."""
    for padding in range(0, 12):
        data = ("Department Name,Number of Sales\n" + "x" * padding + "Caf\u00e9 Central,1\n"
                "Toys,2\n").encode("cp1252")
        for block in range(8, 24):
            result = aggregate(data, 1, block)
            assert result.encoding == "Windows-1252", (padding, block)
            assert dict(result.totals)["x" * padding + "Café Central"] == 1


def test_a_character_cut_at_a_block_edge_is_checked_against_the_next_block():
    """A lead byte ending one block must be followed by a continuation byte at the start of the
    next, even when the next block is otherwise plain ASCII, and even when a later block starts
    with the continuation byte it lacked. A block holding no LF is handed on whole, so feeding
    `Caf\\xc3` alone into 4-byte blocks ends a block with the lead byte."""
    start = b"Department Name,Number of Sales\n" + b"Toys,1\n" * 100  # past the encoding sniff
    for pieces, encoding, totals in (
            ((b"\xa9,2\n", b"Toys,3\n"), "UTF-8", {"Café": 2, "Toys": 103}),
            ((b"e,2\n", b"\xa9x,1\nToys,3\n"), "Windows-1252",
             {"CafÃe": 2, "©x": 1, "Toys": 103})):
        aggregator = Aggregator(tuning=Tuning(block_size=4))
        for piece in (start, b"Caf\xc3") + pieces:
            aggregator.feed(piece)
        result = aggregator.finish()
        assert result.encoding == encoding
        assert dict(result.totals) == totals
        assert same_in_every_chunking(start + b"Caf\xc3" + b"".join(pieces)) == result


def test_grouping_in_two_halves_adds_up_like_grouping_at_once():
    """Names whose last bytes are odd and even, ASCII and not, padded and not, land in the two
    halves; summed in halves (split at one row) they add up as when grouped at once, on the
    columnar path and on the exact one."""
    names = ["a", "b", "ab", "ba", "\xff", "\xfe", "é", " a", "b ", "ÿ\x01", "AB", "z" * 30]
    rows = [f"{names[i % len(names)]},{i}" for i in range(600)]
    data = ("Department Name,Number of Sales\n" + "\n".join(rows) + "\n").encode()
    expected = reference.aggregate(data).totals
    for block in (64, 1000, 1 << 20):
        for tuning in (Tuning(block_size=block), Tuning(block_size=block, parts=1),
                       Tuning(block_size=block, **TINY)):
            aggregator = Aggregator(tuning=tuning)
            aggregator.feed(data)
            assert aggregator.finish().totals == expected, (block, tuning)
    assert aggregate(data.decode().encode("cp1252"), 7, 100, tiny=True).totals == expected


QUOTING = (
    b"Department Name,Number of Sales\n"  # 1
    b"T,1\n"  # 2
    b'"Bad"quote,2\n'  # 3
    b'T,3\n'  # 4
)


@pytest.mark.parametrize("data,rejections", [
    (QUOTING, [Rejection(3, "A quoted field has text after its closing quote; expected the "
                            "delimiter or the end of the line.")]),
    (QUOTING[:-4], [Rejection(3, "A quoted field has text after its closing quote; expected the "
                                 "delimiter or the end of the line.")]),
    (QUOTING[:-5], [Rejection(3, "A quoted field has text after its closing quote; expected the "
                                 "delimiter or the end of the line.")]),
    (QUOTING + b'"Open\n\n', [Rejection(3, "A quoted field has text after its closing quote; "
                                            "expected the delimiter or the end of the line."),
                               Rejection(5, "A quoted field is never closed.")]),
    (QUOTING + b'"Open', [Rejection(3, "A quoted field has text after its closing quote; "
                                       "expected the delimiter or the end of the line."),
                          Rejection(5, "A quoted field is never closed.")]),
], ids=["in the middle", "last line", "last line without its end", "unclosed at the end",
        "unclosed without a line end"])
def test_quoting_errors_are_told_apart_wherever_they_fall(data, rejections):
    """Text after a closing quote and a quote never closed get their own sentence whether the
    row is in the middle, the last of a block or the last of the file."""
    result = same_in_every_chunking(data)
    assert result.rejected_samples == rejections
    assert result.totals == ([("T", 4)] if data.startswith(QUOTING) else [("T", 1)])


def test_fields_longer_than_the_csv_modules_default_limit():
    """A quoted name of 200,000 bytes is within the 1 MiB row limit, though above the csv
    module's own default field limit; a malformed row past the row limit is refused whole."""
    long_name = "N" * 200_000
    data = f'Department Name,Number of Sales\n"{long_name}",2\nT,1\n'.encode()
    for chunk in (None, 8192):
        assert aggregate(data, chunk, 64 * 1024).totals == [(long_name, 2), ("T", 1)]
    too_long = b'Department Name,Number of Sales\n"' + b"y\n" * 1500 + b'"x,1\nT,1\n'
    for chunk in (None, 7, 1000):
        with pytest.raises(LimitExceeded, match="row longer than 2.0 KB"):
            aggregate(too_long, chunk, 1 << 20, max_field_bytes=2048)


def test_the_default_limits_are_the_servers():
    """Without arguments the aggregator takes its limits from server.limits."""
    row_limit = Limits().max_field_bytes
    fits = b"Department Name,Number of Sales\n" + b"N" * (row_limit - 2) + b",1\n"
    aggregator = Aggregator()
    aggregator.feed(fits)
    assert aggregator.finish().rows_processed == 1
    aggregator = Aggregator()
    with pytest.raises(LimitExceeded, match=f"longer than {row_limit / 1e6:.1f} MB"):
        aggregator.feed(fits.replace(b",1\n", b"N,1\n"))
        aggregator.finish()
    assert BLOCK_SIZE == Tuning().block_size


def test_feed_and_finish_after_finish_are_mistakes():
    aggregator = Aggregator()
    aggregator.feed(b"Department Name,Number of Sales\nT,1\n")
    aggregator.finish()
    with pytest.raises(RuntimeError):
        aggregator.feed(b"T,1\n")
    with pytest.raises(RuntimeError):
        aggregator.finish()


def test_tuning_refuses_values_below_one():
    with pytest.raises(ValueError, match="block_size"):
        Tuning(block_size=0)
