"""Numbers, sizes and durations as people read them: shared by the window and the command line."""

from __future__ import annotations


def format_count(number: int, noun: str) -> str:
    """`1 row`, `1,234 rows`."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def format_bytes(count: float) -> str:
    """Decimal units, as file managers show them: `812 bytes`, `12.4 MB`."""
    if count < 1000:
        return f"{int(count):,} bytes"
    for unit in ("KB", "MB", "GB", "TB"):
        count /= 1000
        if count < 1000 or unit == "TB":
            return f"{count:,.1f} {unit}"
    raise AssertionError


def format_duration(seconds: float) -> str:
    """`under 0.1 s`, `0.4 s`, `12 s`, `3 min 5 s`, `1 h 2 min`."""
    if seconds < 0.05:  # "0.0 s" reads as nothing happened
        return "under 0.1 s"
    if seconds < 10:
        return f"{seconds:.1f} s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
