"""What the parsing paths share while a file streams through: lines, pending bytes, counts, sums."""

from __future__ import annotations

from dataclasses import dataclass, field

# What a sum may hold: Arrow's int64, and the output's.
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


@dataclass
class ParseState:
    """Where parsing stands: the header and both paths advance it, the facade reads it."""

    line_base: int = 0  # physical lines before `pending`
    pending: bytes | bytearray = b""  # an unfinished row, carried over to the next block
    rows_processed: int = 0
    rows_rejected: int = 0
    # The first rejections as (line, reason); a reason may quote the file, in its Latin-1 view.
    samples: list[tuple[int, str]] = field(default_factory=list)
    # Per kind of reason: [rows, the first one's line, its reason].
    reasons: dict[str, list] = field(default_factory=dict)
    # The exact path's sums, by the Latin-1 view of the trimmed name.
    totals: dict[str, int] = field(default_factory=dict)
