"""Make a receiving process reuse the memory of the messages it has already freed.

libzmq allocates every received message afresh (malloc in its I/O thread, freed when the last view
of the batch goes). glibc serves blocks of tens of MiB with new mappings, so each message pays for
the kernel mapping and zero-filling every page: receiving then costs several times the CPU of the
copy out of the socket. `keep_freed_memory` asks glibc to keep large freed blocks in the heap
instead, so the next message lands in pages already mapped and warm. noised itself does the same.

It changes the allocator for the whole process: freed memory stays with the process (its resident
size stays at its peak) and all threads share one arena. That suits a process that receives
batches (a DataLoader worker, where `NoisedDataset` applies it); in a trainer's main process it is
the caller's choice (`Consumer(keep_freed_memory=True)`). Apply it before the process starts other
threads that allocate: glibc keeps the arenas those threads already made, and messages decoded in
one of them (above 64 MiB) are still mapped afresh.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

__all__ = ["keep_freed_memory"]

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

_applied: bool | None = None
_lock = threading.Lock()


def keep_freed_memory() -> bool:
    """Apply the policy to this process once; True if glibc took it, False where there is no glibc."""
    global _applied
    with _lock:
        if _applied is None:
            _applied = _apply()
        return _applied


def _apply() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS): its allocator keeps its own policy
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # One arena: a thread's own arena holds at most 64 MiB per heap and maps anything larger.
    # No mappings for large blocks, and never give the top of the heap back.
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1)))
