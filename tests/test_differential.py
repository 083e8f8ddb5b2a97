"""Generated nasty files through the aggregator (columnar and exact paths, every chunking, tunings
that force each way of grouping) and through the plain reference implementation: they must
agree exactly."""

import io
import random

import pytest

import reference
from exports import Shape, exported_file
from server.aggregation import Aggregator, InputError, Tuning

NAMES = ["Toys", "toys", "Électronique", "Bücher", "Café €", "Garden, Outdoor", 'The "Best"',
         "Multi\nLine", "Tabs\tInside", "Pipe|Dept", "Semi;colon", "=SUM(A1)", "Ünïcödé",
         "  Padded  ", "Hardware", "0x Sale"]
GOOD_VALUES = ["1", "5", "12", "-3", "+7", " 8 ", "12.0", "4.00", "5.0000", "0", "-0", "900"]
BAD_VALUES = ["abc", "", "1.5", "0x1F", "99999999999999999999", "1e3", " ", "--1", "4.000",
              "1,200", "-" + "7" * 3000]
HEADER_VARIANTS = {
    "Department Name": ["Department Name", "department name", " DEPARTMENT NAME "],
    "Number of Sales": ["Number of Sales", "number of sales", "Number Of Sales "],
}
EXTRA = ["Date", "Region", "Note"]


def _cell(rng: random.Random, value: str, delimiter: str, quote_all: bool) -> str:
    needs = any(ch in value for ch in (delimiter, '"', "\n", "\r")) or value != value.strip(" ")
    if needs or quote_all or rng.random() < 0.05:
        return '"' + value.replace('"', '""') + '"'
    return value


def generate(seed: int) -> bytes:
    """One random file: delimiter, encoding, line ends, quoting, bad rows and blank lines."""
    rng = random.Random(seed)
    delimiter = rng.choice([",", ";", "\t", "|"])
    end = rng.choice(["\n", "\r\n", "\r"])
    encoding = rng.choice(["utf-8", "utf-8-sig", "utf-16", "cp1252", "utf-8"])
    quote_all = rng.random() < 0.15
    plain = rng.random() < 0.4  # many files look like till exports: no quotes, no oddities
    columns = ["Department Name", "Number of Sales"] + rng.sample(EXTRA, rng.randint(0, 3))
    rng.shuffle(columns)
    header = [rng.choice(HEADER_VARIANTS.get(c, [c])) for c in columns]
    lines = [delimiter.join(_cell(rng, h, delimiter, quote_all) for h in header)]
    if rng.random() < 0.2:
        lines.insert(0, "")
    names = [n for n in NAMES if delimiter not in n or not plain]
    if plain:
        names = [n for n in names if '"' not in n and "\n" not in n and "\t" not in n
                 and "0x" not in n and n == n.strip()]
    big = rng.random() < 0.05
    for _ in range(rng.randint(0, 400)):
        roll = rng.random()
        if not plain and roll < 0.04:
            lines.append("")
            continue
        if not plain and roll < 0.07:
            lines.append(delimiter * (len(columns) - 1))
            continue
        row = {}
        for column in columns:
            if column == "Department Name":
                row[column] = rng.choice(names)
            elif column == "Number of Sales":
                if big:
                    row[column] = str(rng.choice([1, -1]) * rng.randint(2**61, 2**63 - 1))
                elif not plain and rng.random() < 0.08:
                    row[column] = rng.choice(BAD_VALUES)
                else:
                    row[column] = rng.choice(GOOD_VALUES) if not plain else str(rng.randint(-5, 999))
            else:
                row[column] = f"2024-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        if not plain and rng.random() < 0.03:
            row["Department Name"] = rng.choice(["", "   "])
        cells = [_cell(rng, row[c], delimiter, quote_all) for c in columns]
        if not plain and rng.random() < 0.03:
            cells = cells[:rng.randint(1, len(cells) - 1)]
        if not plain and rng.random() < 0.03:
            cells.append("extra")
        lines.append(delimiter.join(cells))
    text = end.join(lines) + (end if rng.random() < 0.8 else "")
    if encoding == "cp1252":
        text = text.replace("€", "€")  # in cp1252 too
        return text.encode("cp1252", errors="replace")
    return text.encode(encoding)


def run(data: bytes, chunk: int, rejected_out: io.BytesIO | None = None, **options):
    aggregator = Aggregator(rejected_out=rejected_out or io.BytesIO(), **options)
    try:
        for start in range(0, len(data), chunk):
            aggregator.feed(data[start:start + chunk])
        result = aggregator.finish()
    except InputError as exc:
        return ("error", str(exc))
    return (result.totals, result.rows_processed, result.rows_rejected,
            [(r.line, r.reason) for r in result.rejected_samples])


ERROR_WORDS = {
    "empty": "is empty",
    "no header": "only blank lines",
    "missing column": "has no",
    "no data rows": "no data rows",
    "no row used": "No row of the file could be used",
    "total overflow": "beyond the largest total",
}


@pytest.mark.parametrize("seed", range(150))
def test_generated_file_agrees_with_the_reference(seed):
    data = generate(seed)
    expected = reference.aggregate(data)
    rng = random.Random(seed * 7919)
    for columnar, small in ((True, False), (True, True), (False, False)):
        # Half the time, judge grouping from one row: blocks kept as rows (as for files with a
        # million departments) get the same scrutiny; sums are kept in one, three or sixteen
        # parts. The second columnar run also merges partial sums after every block and
        # retries odd blocks in one-row pieces.
        judge = rng.choice([1, 4096])
        chunk = rng.choice([1, 2, 3, 7, 64, 1000, 8192, len(data) or 1])
        block = rng.choice([16, 100, 1000, 8192, 1 << 20])
        tuning = Tuning(block_size=block, rows_to_judge_grouping=judge,
                        parts=rng.choice([1, 3, 16]),
                        **({"partial_rows": 1, "piece_bytes": rng.choice([1, 64])} if small
                           else {}))
        outcome = run(data, chunk, columnar=columnar, tuning=tuning)
        context = f"seed={seed} chunk={chunk} columnar={columnar} {tuning}"
        if expected.error is not None:
            assert outcome[0] == "error", context
            assert ERROR_WORDS[expected.error] in outcome[1], (context, outcome[1])
            continue
        totals, processed, rejected_count, samples = outcome
        assert totals == expected.totals, context
        assert processed == expected.rows_processed, context
        assert rejected_count == len(expected.rejected), context
        assert samples == expected.rejected[:100], context


@pytest.mark.parametrize("seed", range(40))
def test_exported_file_agrees_with_the_reference(seed):
    """Files as people export them (names with delimiters quoted, every field quoted, rare
    quoted line breaks and bad values, CRLF, `;` with Windows-1252), a thousand rows and more
    in blocks of a few dozen rows: the columnar path sums them, hands the odd rows to the
    exact path, and the rejected rows file is byte for byte the exact path's own."""
    rng = random.Random(seed)
    data = exported_file(Shape.draw(rng), rng.randint(800, 2500), seed)
    expected = reference.aggregate(data)
    assert expected.error is None
    exact_file = io.BytesIO()
    exact = run(data, len(data), exact_file, columnar=False)
    assert exact == (expected.totals, expected.rows_processed, len(expected.rejected),
                     expected.rejected[:100])
    for _ in range(2):
        chunk = rng.choice([7, 1000, 8192, len(data)])
        tuning = Tuning(block_size=rng.choice([600, 2048, 16384]),
                        piece_bytes=rng.choice([50, 300, 4096]),
                        rows_to_judge_grouping=rng.choice([1, 4096]),
                        parts=rng.choice([1, 16]), partial_rows=rng.choice([1, 4 << 20]))
        rejected_file = io.BytesIO()
        assert run(data, chunk, rejected_file, tuning=tuning) == exact, (seed, chunk, tuning)
        assert rejected_file.getvalue() == exact_file.getvalue(), (seed, chunk, tuning)


@pytest.mark.parametrize("shape", [
    Shape(quote_all=True, delimiter_names=0.05, line_breaks=0.01, bad_values=0.01),
    Shape(delimiter=";", encoding="cp1252", end="\r\n", delimiter_names=0.3, line_breaks=0.01,
          bad_values=0.001, oddities=0.002)], ids=["every field quoted", "; Windows-1252 CRLF"])
def test_a_large_quoted_file_agrees_with_the_exact_path(shape):
    """Megabytes of quoted fields in blocks of megabytes, as the server reads them: quoted
    fields that go on past any mark inside a block, and bad rows, as the exact path has them."""
    data = exported_file(shape, 150_000, 7)
    assert len(data) > 3 << 20
    exact_file = io.BytesIO()
    exact = run(data, 1 << 20, exact_file, columnar=False)
    for tuning in (Tuning(), Tuning(block_size=(3 << 20) + 1)):
        rejected_file = io.BytesIO()
        assert run(data, 1 << 20, rejected_file, tuning=tuning) == exact, tuning
        assert rejected_file.getvalue() == exact_file.getvalue(), tuning


def test_exported_files_cover_the_shapes():
    """The seeds above draw each shape, and files with rejected rows and without."""
    shapes = [Shape.draw(random.Random(seed)) for seed in range(40)]
    assert {shape.delimiter for shape in shapes} == {",", ";"}
    assert {shape.end for shape in shapes} == {"\n", "\r\n"}
    assert any(shape.encoding == "cp1252" for shape in shapes)
    for feature in ("quote_all", "delimiter_names", "line_breaks", "bad_values", "oddities"):
        assert sum(1 for shape in shapes if getattr(shape, feature)) >= 5, feature
        assert sum(1 for shape in shapes if not getattr(shape, feature)) >= 5, feature


def test_generator_covers_the_cases():
    """The seeds above include each kind of file the differential test is meant to cover."""
    files = [generate(seed) for seed in range(150)]
    outcomes = [reference.aggregate(data) for data in files]
    assert sum(1 for o in outcomes if o.error is None and o.rejected) > 20
    assert sum(1 for o in outcomes if o.error is None and not o.rejected) > 20
    assert any(o.error == "total overflow" for o in outcomes)
    assert any(data.startswith(b"\xff\xfe") for data in files)
    assert any(b'"' in data for data in files) and any(b"\r\n" in data for data in files)
    encodings = {encoding_of(data) for data in files[:60]}
    assert {"UTF-8", "UTF-16", "Windows-1252"} <= encodings


def encoding_of(data: bytes) -> str:
    aggregator = Aggregator()
    aggregator.feed(data)
    try:
        return aggregator.finish().encoding
    except InputError:
        return "error"
