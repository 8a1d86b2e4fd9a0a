"""The NVRTC runtime (``ops/nvrtc.py``) on CPU: options, cache keys, the disk cache, compile errors, a missing NVRTC.

NVRTC needs no GPU, so compiling runs here; loading and launching are tested on a GPU through the kernels that use
them (``tests/ops/involution/test_nvrtc_channels_last.py``).
"""

from __future__ import annotations

import sys
import warnings

import pytest

from adaptconv.files import TMP_SUFFIX
from adaptconv.ops import nvrtc

needs_nvrtc = pytest.mark.skipif(not nvrtc.available(), reason="NVRTC (cuda-bindings) is not installed")

SOURCE = nvrtc.Source(
    "scale.cu",
    '#include "scale.cuh"\nextern "C" __global__ void scale(float* x) { x[threadIdx.x] *= FACTOR * twice(1.f); }\n',
    (("scale.cuh", "__device__ float twice(float v) { return 2.f * v; }\n"),),
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty disk cache of its own."""
    monkeypatch.setenv(nvrtc.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_options_are_sorted_and_checked():
    assert nvrtc.compile_options({"B": 2, "A": 1}, "sm_90") == nvrtc.compile_options({"A": 1, "B": 2}, "sm_90")
    assert "-DA=1" in nvrtc.compile_options({"A": 1}, "sm_80")
    with pytest.raises(ValueError, match="sm_90"):
        nvrtc.compile_options({}, "90")
    with pytest.raises(ValueError, match="macro"):
        nvrtc.compile_options({"A B": 1}, "sm_90")


def test_cache_key_covers_source_headers_options_and_version():
    options = nvrtc.compile_options({"FACTOR": 3}, "sm_90")
    key = nvrtc.cache_key(SOURCE, options, (13, 0))
    assert key == nvrtc.cache_key(SOURCE, options, (13, 0))
    header_changed = nvrtc.Source(SOURCE.name, SOURCE.text, (("scale.cuh", "// other\n"),))
    others = [
        nvrtc.cache_key(header_changed, options, (13, 0)),
        nvrtc.cache_key(nvrtc.Source(SOURCE.name, SOURCE.text + "\n", SOURCE.headers), options, (13, 0)),
        nvrtc.cache_key(SOURCE, nvrtc.compile_options({"FACTOR": 4}, "sm_90"), (13, 0)),
        nvrtc.cache_key(SOURCE, nvrtc.compile_options({"FACTOR": 3}, "sm_80"), (13, 0)),
        nvrtc.cache_key(SOURCE, options, (13, 1)),
    ]
    assert len({key, *others}) == 6


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv(nvrtc.CACHE_ENV, str(tmp_path / "mine"))
    assert nvrtc.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv(nvrtc.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert nvrtc.cache_dir() == tmp_path / "xdg" / "adaptconv" / "nvrtc"


def test_package_source_reads_package_data():
    source = nvrtc.package_source("adaptconv.ops.involution", "aggregation_channels_last.cu",
                                  [("adaptconv.ops", "vector_io.cuh")])  # fmt: skip
    assert '#include "vector_io.cuh"' in source.text
    assert source.headers[0][0] == "vector_io.cuh" and "copy_async16" in source.headers[0][1]


@needs_nvrtc
def test_compile_then_hit_the_disk_cache(cache, monkeypatch):
    first = nvrtc.compile_cubin(SOURCE, {"FACTOR": 3}, "sm_90")
    assert not first.cached and first.cubin[:4] == b"\x7fELF" and "Used" in first.log
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".cubin" and files[0].name.startswith("scale-sm_90-")
    assert not list(cache.glob(f"*{TMP_SUFFIX}"))  # written through a temporary file, renamed
    monkeypatch.setattr(nvrtc, "_compile", lambda *a: pytest.fail("compiled again instead of reading the cache"))
    second = nvrtc.compile_cubin(SOURCE, {"FACTOR": 3}, "sm_90")
    assert second.cached and second.cubin == first.cubin


@needs_nvrtc
def test_another_constant_is_another_entry(cache):
    nvrtc.compile_cubin(SOURCE, {"FACTOR": 3}, "sm_90")
    nvrtc.compile_cubin(SOURCE, {"FACTOR": 4}, "sm_90")
    assert len(list(cache.iterdir())) == 2


@needs_nvrtc
def test_unwritable_cache_still_compiles(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(nvrtc.CACHE_ENV, str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not cache"):
        assert nvrtc.compile_cubin(SOURCE, {"FACTOR": 3}, "sm_90").cubin


@needs_nvrtc
def test_compile_error_shows_the_log(cache):
    broken = nvrtc.Source("broken.cu", 'extern "C" __global__ void k() { undeclared_name(); }\n')
    with pytest.raises(nvrtc.CompileError, match="undeclared_name") as info:
        nvrtc.compile_cubin(broken, {}, "sm_90")
    assert "broken.cu" in str(info.value) and "undeclared_name" in info.value.log
    assert not cache.exists() or not list(cache.iterdir())  # nothing cached


def test_missing_nvrtc_warns_once_and_says_how(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuda.bindings", None)  # import cuda.bindings now fails
    for cached in (nvrtc.nvrtc_version, nvrtc.available, nvrtc.warn_unavailable):
        cached.cache_clear()
    try:
        assert not nvrtc.available()
        with pytest.raises(nvrtc.NvrtcUnavailable, match="cuda-bindings"):
            nvrtc.nvrtc_version()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            nvrtc.warn_unavailable("the test op")
            nvrtc.warn_unavailable("the test op")
        assert len(caught) == 1
        message = str(caught[0].message)
        assert "the test op runs its slower fallback" in message and "pip install cuda-bindings" in message
    finally:
        for cached in (nvrtc.nvrtc_version, nvrtc.available, nvrtc.warn_unavailable):
            cached.cache_clear()
