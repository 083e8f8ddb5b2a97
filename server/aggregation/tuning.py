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
    # Partial sums are kept in this many parts by a hash of the name, each merged on its own
    # (server/aggregation/merge.py).
    parts: int = 16
    # A block this many rows long that groups to more than half as many departments marks a file
    # with so many departments that grouping block by block is not worth it.
    rows_to_judge_grouping: int = 4096
    # Rows a part takes in before it is merged, at most (fewer under a low departments limit),
    # unless it holds so many departments that merging twice as many rows is worth it:
    # 16 parts of 128K rows keep about two million rows unmerged.
    partial_rows: int = 1 << 17

    def __post_init__(self) -> None:
        for name in ("block_size", "piece_bytes", "parts", "rows_to_judge_grouping",
                     "partial_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"Tuning.{name} must be at least 1")
        if self.parts > 256:
            raise ValueError("Tuning.parts must be at most 256")
