"""What one server accepts and where it keeps its files by default: written here and nowhere
else."""

from __future__ import annotations

from dataclasses import dataclass

# Relative to the folder the server is started from.
DEFAULT_STORAGE_DIR = "storage"
# With a history shared by several servers, a server that has not renewed its lease for this
# long is taken for gone (server/leases.py says why 15).
DEFAULT_LEASE_SECONDS = 15.0


@dataclass(frozen=True)
class Limits:
    """What one server accepts; the command line's defaults are these."""

    max_upload_bytes: int = 10 * 1024**3
    max_departments: int = 5_000_000
    max_concurrent_uploads: int = 8
    max_field_bytes: int = 1 << 20  # the longest row (or field) in bytes
    # An upload that receives no bytes for this long is ended, and its slot freed.
    upload_idle_seconds: float = 60.0
