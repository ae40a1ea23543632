"""Keep large CPU tensors out of fresh mmap'd pages.

PyTorch's CPU allocator has no cache: every tensor above glibc's mmap threshold (at most 32 MB)
is a fresh ``mmap`` whose pages are faulted in and zeroed on first touch, then returned with
``munmap``. Per-edge tensors of a few thousand atoms are that large, and in a forward/backward
pass the page faults cost several times the arithmetic (measured: a 63 MB multiply takes 25 ms
with mmap, 4 ms without). Serving every allocation from the heap and never trimming it makes
the process reuse its pages; the price is that memory freed late is not handed back to the OS
until the process exits, which suits MD and training runs.
"""

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_tuned = False


def keep_freed_memory() -> bool:
    """Tell glibc malloc to stop using mmap and to keep freed memory; True if it applied."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        _tuned = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**62))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return _tuned
