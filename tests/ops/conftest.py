"""Fixtures of the operator tests."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest


@pytest.fixture(scope="module")
def interpreter():
    """One worker process whose triton interprets kernels: TRITON_INTERPRET=1 is set before it imports triton.

    ``triton.jit`` reads TRITON_INTERPRET when a kernel is decorated, i.e. when adaptconv is imported, which the test
    process has done long before; so interpreted kernels run in this spawned worker, and the comparisons are made
    in the test process."""
    saved = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    try:
        pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(os.getpid).result()  # start the worker while the variable is set
    finally:
        if saved is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = saved
    with pool:
        yield pool
