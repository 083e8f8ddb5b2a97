"""A plain reference implementation of the input rules (README, "What a file may look like"),
for differential tests.

Whole-file and slow on purpose: decode everything, split physical lines, parse RFC 4180 with a
small state machine of its own (not the csv module), then apply the rules one by one. It handles
well-formed quoting (what the generators write); it raises ValueError on anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

WS = " \t\r\n\v\f"
NUMBER = re.compile(r"[ \t\r\n\v\f]*([+-]?[0-9]+)(\.0*)?[ \t\r\n\v\f]*")
# 3.000: 3 as a decimal, or 3000 with a point between thousands? Rejected.
AMBIGUOUS = re.compile(r"[ \t\r\n\v\f]*[+-]?[0-9]{1,3}\.000[ \t\r\n\v\f]*")
# 1,200 / 1.200 / 1 200 / 1'200: one separator, repeated between groups of three digits.
THOUSANDS = re.compile(r"[+-]?[0-9]{1,3}([,.' ])[0-9]{3}(\1[0-9]{3})*")


@dataclass
class Outcome:
    totals: list[tuple[str, int]] | None = None
    rows_processed: int = 0
    rejected: list[tuple[int, str]] | None = None
    error: str | None = None  # a whole-file failure: the kind, not the sentence


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(_cp1252(byte) for byte in data)


def _cp1252(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


def _records(text: str, delimiter: str):
    """Yields (first physical line, fields) for each record, blank lines as []."""
    line = 1
    i = 0
    n = len(text)
    while i < n:
        start_line = line
        fields: list[str] = []
        field = []
        quoted_field = False
        at_field_start = True
        while True:
            if i >= n:
                if fields or field or quoted_field or not at_field_start:
                    fields.append("".join(field))
                break
            ch = text[i]
            if at_field_start and ch == '"':
                at_field_start = False
                quoted_field = True
                i += 1
                while True:
                    if i >= n:
                        raise ValueError("unclosed quote")
                    ch = text[i]
                    if ch == '"':
                        if i + 1 < n and text[i + 1] == '"':
                            field.append('"')
                            i += 2
                            continue
                        i += 1
                        break
                    if ch == "\r":
                        line += 1
                        if i + 1 < n and text[i + 1] == "\n":
                            field.append("\r\n")
                            i += 2
                            continue
                    elif ch == "\n":
                        line += 1
                    field.append(ch)
                    i += 1
                if i < n and text[i] not in (delimiter, "\r", "\n"):
                    raise ValueError("text after a closing quote")
                continue
            if ch == delimiter:
                fields.append("".join(field))
                field = []
                at_field_start = True
                quoted_field = False
                i += 1
                continue
            if ch in "\r\n":
                i += 2 if text.startswith("\r\n", i) else 1
                line += 1
                if fields or field or quoted_field or not at_field_start:
                    fields.append("".join(field))
                break
            field.append(ch)
            at_field_start = False
            i += 1
        yield start_line, fields


def aggregate(data: bytes) -> Outcome:
    """What the contract says the file gives."""
    if not data:
        return Outcome(error="empty")
    if b"\x00" in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return Outcome(error="binary")
    text = _decode(data)
    header = None
    for header_line, line_text in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if line_text.strip(WS):
            header = line_text
            break
    if header is None:
        return Outcome(error="no header")
    wanted = ("department name", "number of sales")
    delimiter = names = None
    for candidate in (",", ";", "\t", "|"):
        try:
            _, cells = next(_records(header + "\n", candidate))
        except ValueError:
            continue
        cleaned = [cell.strip(WS).lstrip("\ufeff").strip(WS).casefold() for cell in cells]
        if all(name in cleaned for name in wanted):
            delimiter, names = candidate, cleaned
            break
    if delimiter is None:
        return Outcome(error="missing column")
    department, sales = names.index(wanted[0]), names.index(wanted[1])
    needed = max(department, sales) + 1
    totals: dict[str, int] = {}
    rejected: list[tuple[int, str]] = []
    processed = 0
    for line, fields in _records(text, delimiter):
        if line <= header_line:
            continue
        if not any(cell.strip(WS) for cell in fields):
            continue
        if len(fields) < needed:
            plural = "" if len(fields) == 1 else "s"
            rejected.append((line, f"The row has {len(fields)} field{plural}; "
                                   f"expected at least {needed}."))
            continue
        name = fields[department].strip(WS)
        raw = fields[sales]
        # A row with k fields more than the header whose k fields after the number are groups
        # of three digits: an unquoted thousands separator ("Garden,1,200"), read as the
        # number it was.
        extra = len(fields) - len(names)
        groups = fields[sales + 1:sales + 1 + extra]
        if (delimiter == "," and extra > 0 and len(groups) == extra
                and re.fullmatch(r"[ \t]*[+-]?[0-9]{1,3}", raw)
                and all(re.fullmatch(r"[0-9]{3}", cell) for cell in groups)):
            raw = ",".join(fields[sales:sales + 1 + extra])
        match = NUMBER.fullmatch(raw)
        if not name:
            rejected.append((line, "Department Name is empty."))
        elif match is None or AMBIGUOUS.fullmatch(raw):
            shown = raw.strip(WS)
            if not shown:
                rejected.append((line, "Number of Sales is empty; expected a whole number."))
            elif AMBIGUOUS.fullmatch(shown):
                whole = shown.split(".")[0]
                rejected.append((line, f'Number of Sales "{shown}" could be {whole} or '
                                       f'{whole}000 (a point between thousands); write the '
                                       'number without a point.'))
            elif THOUSANDS.fullmatch(shown):
                separator = next(c for c in shown if not c.isdigit() and c not in "+-")
                plain = "".join(c for c in shown if c.isdigit() or c in "+-")
                rejected.append((line, f'Number of Sales "{shown}" is written with a thousands '
                                       f'separator ("{separator}"); write it without one: '
                                       f'{plain}.'))
            else:
                shown = shown if len(shown) <= 40 else shown[:40] + "..."
                rejected.append((line, f'Number of Sales "{shown}" is not a whole number.'))
        elif (len(match.group(1).lstrip("+-").lstrip("0")) > 19
              or not -(2**63) <= int(match.group(1)) < 2**63):
            shown = raw.strip(WS)
            if len(shown) > 40:
                shown = f"{shown[:20]}...{shown[-8:]} ({len(shown):,} characters)"
            if shown.startswith("-"):
                rejected.append((line, f"Number of Sales {shown} is too small; the smallest "
                                       f"total that can be kept is {-2**63:,}."))
            else:
                rejected.append((line, f"Number of Sales {shown} is too large; the largest "
                                       f"total that can be kept is {2**63 - 1:,}."))
        else:
            totals[name] = totals.get(name, 0) + int(match.group(1))
            processed += 1
    if processed == 0 and not rejected:
        return Outcome(error="no data rows")
    if processed == 0:
        return Outcome(error="no row used")
    if any(not -(2**63) <= total < 2**63 for total in totals.values()):
        return Outcome(error="total overflow")
    # Case-insensitively by Unicode lowercase (so "ß" stays "ß", unlike casefold), then exactly.
    ordered = sorted(totals.items(), key=lambda item: (item[0].lower(), item[0]))
    return Outcome(totals=ordered, rows_processed=processed, rejected=rejected)
