"""Detection tests: one intra-op thread."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    # On a shared 2-core machine two intra-op threads wait on each other whenever another process takes a core,
    # which makes the small ops of a detector's step ten times slower; one thread is steady.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
