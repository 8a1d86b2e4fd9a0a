"""Test configuration: seeding and skipping GPU tests where there is no GPU."""

from __future__ import annotations

import os

import pytest
import torch

# On a GPU, one tile shape a kernel instead of tuning each new shape (minutes over the GPU tests): every tile shape
# the autotuner may choose is checked against the reference in the interpreter
# (test_interpreted_every_gpu_tile_shape). Set ADAPTCONV_AUTOTUNE=1 to test with tuning.
os.environ.setdefault("ADAPTCONV_AUTOTUNE", "0")


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny .npz data set (clirun.make_tiny_npz): 48 training and 16 validation 16x16 grey images, 4 classes."""
    from clirun import make_tiny_npz

    return make_tiny_npz(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def finished(tiny, tmp_path_factory):
    """One uninterrupted 2-epoch run of ``adaptconv train`` on ``tiny``, checkpointing every step (shared: copy it
    before writing into it)."""
    from clirun import MODULE, run, train_args

    out = tmp_path_factory.mktemp("runs") / "a"
    result = run(train_args(tiny, out, "--checkpoint-every-steps", "1"), cli=MODULE)
    assert "done: rednet26 (width 0.25), 2 epochs" in result.stdout
    return out


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One intra-op thread for the test: on a shared 2-core machine two threads wait on each other whenever another
    process takes a core, which makes many small ops (a detector's step) up to ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    if not torch.cuda.is_available():
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)


def pytest_configure(config):
    # Under pytest-xdist each worker gets one core: one intra-op thread avoids oversubscribing the machine.
    import os

    if os.environ.get("PYTEST_XDIST_WORKER"):
        torch.set_num_threads(1)


@pytest.fixture
def no_tf32():
    """float32 convolutions and matmuls in true float32 on a GPU: TF32 would dominate the error against float64,
    and two runs that pick different TF32 algorithms (eager and compiled) differ by about 1e-3."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
