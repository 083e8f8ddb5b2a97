"""The streaming aggregator over small real files: every input rule, every chunking."""

import io

import pyarrow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference
from server.aggregator import Aggregator, InputError, LimitExceeded, Rejection
from server.departments import byte_order

CHUNK_SIZES = [None, 1, 2, 3, 7, 8192]
BLOCK_SIZES = [1, 7, 8192, 1 << 20]
HEADER = "Date,Department Name,Number of Sales\n"


def aggregate(data: bytes, chunk: int | None = None, block: int = 1 << 20, **kwargs):
    aggregator = Aggregator(block_size=block, **kwargs)
    if chunk is None:
        aggregator.feed(data)
    else:
        for start in range(0, len(data), chunk):
            aggregator.feed(data[start:start + chunk])
    return aggregator.finish()


def same_in_every_chunking(data: bytes):
    """Aggregates data whole and in every chunk and block size; all results must agree."""
    expected = aggregate(data)
    for chunk in CHUNK_SIZES:
        for block in BLOCK_SIZES:
            assert aggregate(data, chunk, block) == expected, f"chunk={chunk} block={block}"
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
     (HEADER + "d,Plain,1\n" * 3000).encode() + "d,Café,2\n".encode("cp1252"),
     [("Café", 2), ("Plain", 3000)]),
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
     b"Department Name,Number of Sales\nT, +5 ,\nT,12.0\nT,-3\nT, 7.000\nR,-2\n",
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
    Rejection(9, "Number of Sales 99999999999999999999 does not fit in 64 bits."),
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


def test_rejected_rows_file_lists_every_rejected_row():
    out = io.BytesIO()
    aggregator = Aggregator(rejected_out=out)
    aggregator.feed(BAD_ROWS)
    aggregator.finish()
    lines = out.getvalue().decode().split("\n")
    assert lines[0] == "Line,Reason,Raw Row"
    assert lines[1] == '3,"Number of Sales ""abc"" is not a whole number.","d,Toys,abc"'
    assert lines[4] == '7,"Number of Sales ""1.5"" is not a whole number.","d,""Multi\r'
    assert lines[5] == 'line"",1.5"'
    assert out.getvalue().decode().count("\n") == 1 + 9 + 1  # header, rows, the quoted break


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
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "This file contains binary data (a NUL byte at "
     "byte 9), so it is not a CSV text file."),
    ("Department Name,Number of Sales\nT,1\n".encode("utf-16-le"), "This file looks like "
     "UTF-16 text without a byte-order mark. Save it as UTF-8 (or UTF-16 with a byte-order mark) "
     "and try again."),
    (b"\xff\xfe" + "Department Name,Number of Sales\nT,1\n".encode("utf-16-le") + b"\x00\xd8",
     "The file starts with a UTF-16 byte-order mark but is not valid UTF-16 (unexpected end of "
     "data)."),
    (b"Department Name,Number of Sales\nT,9223372036854775807\nT,1\n", "The total for "
     "department \"T\" is 9223372036854775808, which is too large to store (it does not fit in "
     "64 bits)."),
    (b"Department Name,Number of Sales\nT,-9223372036854775808\nT,-1\n", "The total for "
     "department \"T\" is -9223372036854775809, which is too large to store (it does not fit in "
     "64 bits)."),
    (b"x" * (2 << 20), "The first line of the file is longer than 1 MiB with no line break, so "
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


def test_too_many_departments():
    data = b"Department Name,Number of Sales\nA,1\nB,1\nA,1\nC,1\n"
    assert len(aggregate(data, max_departments=3).totals) == 3
    with pytest.raises(LimitExceeded, match="more than 2 different departments"):
        aggregate(data, max_departments=2)


def test_never_holds_the_file():
    """Memory is the totals plus one block: the buffers stay small over a large input."""
    aggregator = Aggregator(block_size=64 * 1024)
    aggregator.feed(b"Department Name,Number of Sales\n")
    row = b"Toys,1\n" * 1000
    for _ in range(2000):  # 14 MB
        aggregator.feed(row)
        assert len(aggregator._buffer) + len(aggregator._pending) < 64 * 1024 + len(row)
    assert aggregator.finish().totals == [("Toys", 2_000_000)]


@pytest.mark.parametrize("data", [
    b"Department Name,Number of Sales\nT,1\n" + b"x" * 3000 + b",1\n",
    b"Department Name,Number of Sales\nT,1\n\"" + b"y\n" * 1500 + b"\",1\n",
], ids=["long line", "long quoted field over many lines"])
def test_rows_longer_than_the_field_limit(data):
    for chunk in (None, 7, 1000):
        with pytest.raises(LimitExceeded) as info:
            aggregate(data, chunk, 1000, max_field_bytes=2048)
        assert str(info.value) == ("The file has a row longer than 2 KiB, the longest this server "
                                   "accepts. Is a quote left open?")
    assert aggregate(data.replace(b"x" * 3000, b"x" * 10).replace(b"y\n" * 1500, b"y\n"),
                     max_field_bytes=2048).rows_processed == 2


def test_many_departments_are_kept_as_rows_and_still_add_up():
    """A file where nearly every row names a new department: blocks stop being grouped one by
    one (rows are kept and grouped together), and the totals match the plain reference, with a
    padded name and upper and lower case among them."""
    rows = [f"{('Dept' if i % 3 else 'dept')} {i % 20_000:05d},{i % 7 - 3}" for i in range(30_000)]
    rows[12_345] = "  Dept 00001 ,5"
    data = ("Department Name,Number of Sales\n" + "\n".join(rows) + "\n").encode()
    aggregator = Aggregator(block_size=128 * 1024)
    for start in range(0, len(data), 8192):
        aggregator.feed(data[start:start + 8192])
    result = aggregator.finish()
    assert aggregator._rows_per_block and aggregator.columnar_blocks > 3
    assert result.totals == reference.aggregate(data).totals
    assert len(result.totals) == len({row.split(",")[0].strip() for row in rows}) > 20_000


@given(st.lists(st.binary(max_size=30).map(lambda key: key.replace(b"\x00", b"\x01")),
                max_size=300), st.integers(0, 5))
@settings(max_examples=300, deadline=None)
def test_byte_order_sorts_like_python(keys, start):
    values = pyarrow.array(keys, pyarrow.binary()).slice(min(start, len(keys)))
    order = byte_order(values)
    assert [values[int(i)].as_py() for i in order] == sorted(values.to_pylist())


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
    next, even when the next block is otherwise plain ASCII (its fast path)."""
    aggregator = Aggregator()
    assert aggregator._continues_utf8(bytearray(b"Toys,1\nCaf\xc3"))
    assert aggregator._continues_utf8(bytearray(b"\xa9,2\n"))
    assert aggregator._continues_utf8(bytearray(b"Toys,1\nCaf\xc3"))
    assert not aggregator._continues_utf8(bytearray(b"e,2\nToys,3\n"))


def test_grouping_in_two_halves_adds_up_like_grouping_at_once(monkeypatch):
    from server import aggregator as aggregator_module
    # Empty keys after keys ending odd and even: they must still land in one half.
    keys = [b"", b"a", b"", b"b", b"", b"ab", b"ba", b"\xff", b"a", b"ab", b"\xff\x01"] * 50
    table = pyarrow.table({"k": pyarrow.chunked_array([keys[:123], keys[123:]], pyarrow.binary()),
                           "v": pyarrow.array(range(len(keys)), pyarrow.int64())})
    monkeypatch.setattr(aggregator_module, "_SPLIT_ROWS", 1)
    halves = aggregator_module._group(table)
    expected = {}
    for key, value in zip(keys, range(len(keys))):
        expected[key] = expected.get(key, 0) + value
    assert dict(zip(halves.column("k").to_pylist(), halves.column("v").to_pylist())) == expected
    assert halves.num_rows == len(expected)
