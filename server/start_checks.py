"""What `serve` checks before it starts, so that each fault has its own sentence."""

from __future__ import annotations

import errno
import logging
import socket
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)


def check_writable(folder: Path, mode: int) -> str:
    """Makes the output folder (with mode) if needed and writes a file in it; why it cannot, as
    a sentence, or "" if it can."""
    try:
        folder.mkdir(mode=mode, parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
        if folder.stat().st_mode & 0o022:
            log.warning("the output folder %s can be written by other users: they can replace "
                        "or remove results; make it 0700 (or 0750)", folder)
    except OSError as exc:
        return (f"Cannot write to the output folder {folder}: {exc.strerror or exc}. Choose "
                "another with --output-dir (OUTPUT_DIR), or give this server's user the right "
                "to write there.")
    return ""


def cannot_bind(address: str) -> str:
    """Why address ("host:port") cannot be listened on, asked of the system before gRPC is (which
    would log a line of its own and say less); "" if it can, or if it cannot be told."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    if not port.isdigit() or int(port) == 0:
        return ""
    try:
        resolved = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM,
                                      flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return f"{host} is not a name or address of this machine"
    for family, kind, protocol, _name, where in resolved:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "another program is already listening on that port"
                if exc.errno == errno.EACCES:
                    return "this user may not use that port (ports below 1024 need privileges)"
                if exc.errno == errno.EADDRNOTAVAIL:
                    return f"{host} is not an address of this machine"
    return ""
