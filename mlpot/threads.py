"""Thread policy for mlpot's CPU work on machines shared with other processes.

Wait policy. torch's CPU wheel runs its intra-op threads on GNU OpenMP (libgomp), and the fused
CPU kernels share that runtime and its thread pool. By default a libgomp thread with nothing to
do spins (GOMP_SPINCOUNT, 300,000 polls, milliseconds) before it sleeps, at the end of every
parallel region and while it waits for the next. When another process shares the cores, the
spinning thread holds the core its peer needs, and every parallel region waits out a scheduler
slice: beside one busy process a 108-atom force call took 1.9 s with two threads, 0.15 s with
one (benchmarks/threads/). With ``OMP_WAIT_POLICY=PASSIVE`` a waiting thread sleeps at
once, its core goes to whoever needs it, and two threads cost about what one does. The runtime
reads the variable once, when it is loaded (``import torch``), so ``import mlpot`` sets it
(:func:`prefer_passive_wait`); in a script that imports torch before mlpot it comes too late,
and the variable has to be set in the environment instead.

Thread count. The kernels run on torch's intra-op thread count (``torch.set_num_threads``,
``OMP_NUM_THREADS``), capped at the CPUs this process may run on now (its affinity mask: taskset,
cpusets, a batch system's binding), which may be fewer than the machine has and fewer than when
torch started. ``MLPOT_NUM_THREADS`` overrides the count for the kernels alone.
"""

import os
from typing import Mapping, MutableMapping

from mlpot.errors import MLPotError

NUM_THREADS_VARIABLE = "MLPOT_NUM_THREADS"
# A user who set any of these chose a wait policy (GNU's and LLVM/Intel's runtimes): keep it.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def prefer_passive_wait(environ: MutableMapping[str, str] = os.environ) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the environment already names a wait policy; True if set.

    Takes effect only where the OpenMP runtime has not been loaded yet (before ``import torch``),
    and in the child processes that inherit the environment.
    """
    if any(name in environ for name in WAIT_VARIABLES):
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def usable_cpus() -> int:
    """CPUs this process may run on now: its affinity mask where the OS has one, else all CPUs."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def kernel_threads(torch_threads: int, environ: Mapping[str, str] = os.environ) -> int:
    """Threads for one call of the fused CPU kernels, given torch's intra-op thread count.

    ``MLPOT_NUM_THREADS`` is taken as it is (a positive integer); otherwise ``torch_threads``,
    at most :func:`usable_cpus` (more threads than CPUs only queue behind each other).
    """
    override = environ.get(NUM_THREADS_VARIABLE)
    if override is not None:
        try:
            count = int(override)
        except ValueError:
            count = 0
        if count < 1:
            raise MLPotError(f"{NUM_THREADS_VARIABLE} must be a positive integer, got {override!r}")
        return count
    return max(1, min(torch_threads, usable_cpus()))
