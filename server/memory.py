"""How a server process allocates, and how it gives memory back once it is idle.

A job with a million departments briefly needs a few hundred MiB (Arrow tables, numpy arrays,
the reply). Without care the process keeps most of it after the job: Arrow's default allocator
here, mimalloc, keeps freed pages per thread, and glibc keeps freed heap. Measured 5 s after a
job with 952,468 departments (bench/README.md): idle 111 -> 330 MiB with mimalloc; with Arrow's
jemalloc 105 -> 171 MiB, and with the release below as well, back within a few MiB. Peaks and
times stayed within their noise. Arrow's C++ parts that allocate from Arrow's own default pool
(not the one set here) still used mimalloc: `main.py` has them use glibc's malloc instead, as
only an environment variable read before Arrow loads can.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

import pyarrow

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # glibc's mallopt parameter


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def configure_process() -> None:
    """Called once by a program that runs a server (`serve`, the window): Arrow allocates
    through jemalloc where this build of Arrow has it, and glibc keeps at most two malloc
    arenas. gRPC, the aggregator and Arrow each allocate blocks of megabytes from their own
    threads; with an arena per thread the freed blocks scatter and the peak creeps up with the
    file size (measured: 240 MiB against 164 MiB for a 1 GB upload). Elsewhere than glibc the
    second part does nothing."""
    try:
        pyarrow.set_memory_pool(pyarrow.jemalloc_memory_pool())
    except NotImplementedError:  # a build of Arrow without jemalloc: keep its default
        log.debug("Arrow has no jemalloc here; keeping %s",
                  pyarrow.default_memory_pool().backend_name)
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt"):
        libc.mallopt(_M_ARENA_MAX, 2)


def release_unused() -> None:
    """Gives freed memory back to the system: Arrow's pool's, and glibc's heap (a few ms)."""
    pyarrow.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
