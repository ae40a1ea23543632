"""The thread policy (mlpot/threads.py): the kernels' thread count follows the CPUs the process may
use and the user's override; ``import mlpot`` asks for passive OpenMP waits before torch loads.
Equal results on one and two threads: tests/test_kernels.py. Timings: benchmarks/threads/."""

import os
import subprocess
import sys

import pytest

from mlpot.errors import MLPotError
from mlpot.threads import WAIT_VARIABLES, kernel_threads, prefer_passive_wait


@pytest.mark.parametrize("cpus,torch_threads,expected", [({0}, 8, 1), ({0, 1, 2, 3}, 8, 4), ({0, 1, 2, 3}, 2, 2), ({5}, 1, 1)])
def test_kernel_threads_follow_the_affinity_mask(monkeypatch, cpus, torch_threads, expected):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(cpus), raising=False)
    assert kernel_threads(torch_threads, environ={}) == expected


def test_mlpot_num_threads_overrides_torch_and_the_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setenv("MLPOT_NUM_THREADS", "3")
    assert kernel_threads(1) == 3
    monkeypatch.delenv("MLPOT_NUM_THREADS")
    assert kernel_threads(3) == 1


@pytest.mark.parametrize("value", ["0", "-2", "two", ""])
def test_a_bad_mlpot_num_threads_is_one_clear_error(value):
    with pytest.raises(MLPotError, match=f"MLPOT_NUM_THREADS must be a positive integer, got '{value}'"):
        kernel_threads(2, environ={"MLPOT_NUM_THREADS": value})


def test_passive_wait_unless_the_user_named_a_policy():
    environ = {}
    assert prefer_passive_wait(environ) and environ == {"OMP_WAIT_POLICY": "PASSIVE"}
    for name, value in (("OMP_WAIT_POLICY", "active"), ("GOMP_SPINCOUNT", "1000"), ("KMP_BLOCKTIME", "0")):
        environ = {name: value}
        assert not prefer_passive_wait(environ) and environ == {name: value}


def test_import_mlpot_sets_the_wait_policy_before_torch_loads():
    code = "import os, sys, mlpot; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    environment = {name: value for name, value in os.environ.items() if name not in WAIT_VARIABLES}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["PASSIVE", "False"]
