"""The aggregator's tuning knobs, one frozen object: measured defaults, small values in tests."""

from __future__ import annotations

from dataclasses import dataclass

# Large enough that the columnar path's per-call cost vanishes, small enough that memory stays
# flat while a long file streams through.
BLOCK_SIZE = 4 << 20


@dataclass(frozen=True)
class Tuning:
    """How work is cut and grouped; any values give the same results, only speed and memory vary."""

    # Bytes aggregated at a time (see BLOCK_SIZE).
    block_size: int = BLOCK_SIZE
    # A block that cannot take the columnar path whole is retried in pieces of about this size,
    # so that one odd row sends only its own piece down the exact path.
    piece_bytes: int = 256 * 1024
    # Tables of partial sums this long are grouped in two halves on two threads at once.
    split_rows: int = 1 << 19
    # A block this many rows long that groups to more than half as many departments marks a file
    # with so many departments that grouping block by block is not worth it.
    rows_to_judge_grouping: int = 4096
    # Partial sums kept before they are merged (about 120 MB of rows): merging stays rare.
    partial_rows: int = 4 << 20

    def __post_init__(self) -> None:
        for name in ("block_size", "piece_bytes", "split_rows", "rows_to_judge_grouping",
                     "partial_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"Tuning.{name} must be at least 1")
