"""CUDA C++ shipped as source in the package, compiled at first use by NVRTC, cached, and launched on PyTorch's
current stream.

NVIDIA's Python packages do the work (``cuda-bindings`` for NVRTC and the driver API, ``cuda-pathfinder`` to find
the NVRTC library that PyTorch's CUDA wheels install): no compiler and no CUDA toolkit are needed on the user's
machine. A kernel is named by a :class:`Source` (a ``.cu`` file of a package and the ``.cuh`` headers it includes),
compile-time constants (``-D``) and a GPU architecture (``sm_90``):

- the machine code (cubin) is cached on disk under :func:`cache_dir`, one file per (source and headers, options,
  architecture, NVRTC version), written atomically, so a second process loads it without compiling;
- loaded modules and their functions are kept per device in this process;
- :meth:`Function.launch` launches on ``torch.cuda.current_stream()``, so CUDA graphs capture it and
  ``torch.compile(mode="reduce-overhead")`` replays it.

Compiling needs no GPU (the tests compile every kernel variant on CPU); loading and launching need one. Where NVRTC
cannot be loaded, :func:`available` is False and :func:`warn_unavailable` says, once, how to enable it.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import importlib.resources
import os
import re
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ..files import atomic_write

__all__ = [
    "CompileError",
    "Function",
    "NvrtcUnavailable",
    "Source",
    "available",
    "cache_dir",
    "cache_key",
    "compile_cubin",
    "compile_options",
    "device_arch",
    "get_function",
    "nvrtc_version",
    "package_source",
    "warn_unavailable",
]

#: the environment variable that moves the disk cache
CACHE_ENV = "ADAPTCONV_CACHE_DIR"
#: what a user does to get the compiled kernels, said by every warning and error about a missing NVRTC
HOW_TO_ENABLE = (
    "install PyTorch's CUDA wheel (it brings NVRTC), or `pip install cuda-bindings cuda-pathfinder "
    "nvidia-cuda-nvrtc` matching your CUDA major version"
)


class NvrtcUnavailable(RuntimeError):
    """NVRTC (or the ``cuda-bindings`` package) cannot be loaded on this machine."""


class CompileError(RuntimeError):
    """NVRTC rejected a source; the message holds its compile log."""

    def __init__(self, name: str, options: Sequence[str], log: str):
        super().__init__(f"NVRTC could not compile {name} with {' '.join(options)}:\n{log}")
        self.log = log


@dataclass(frozen=True)
class Source:
    """A CUDA C++ translation unit: its file name, its text, and the headers it includes as (name, text)."""

    name: str
    text: str
    headers: tuple[tuple[str, str], ...] = ()


def package_source(package: str, name: str, headers: Iterable[tuple[str, str]] = ()) -> Source:
    """The source file ``name`` of ``package`` with its headers, each a (package, file name) of package data."""
    read = lambda pkg, file: importlib.resources.files(pkg).joinpath(file).read_text()  # noqa: E731
    return Source(name, read(package, name), tuple((file, read(pkg, file)) for pkg, file in headers))


def _bindings():
    """``cuda.bindings.nvrtc``, or NvrtcUnavailable saying why not and how to enable it."""
    try:
        from cuda.bindings import nvrtc
    except ImportError as exc:
        raise NvrtcUnavailable(f"the cuda-bindings package is not installed ({exc}); {HOW_TO_ENABLE}") from exc
    return nvrtc


@functools.lru_cache(maxsize=1)
def nvrtc_version() -> tuple[int, int]:
    """NVRTC's (major, minor); NvrtcUnavailable where the package or the library cannot be loaded."""
    nvrtc = _bindings()
    try:
        err, major, minor = nvrtc.nvrtcVersion()
    except Exception as exc:  # the library itself is missing: cuda.pathfinder raises its own error types
        raise NvrtcUnavailable(f"NVRTC could not be loaded ({exc}); {HOW_TO_ENABLE}") from exc
    _check(nvrtc, err, "nvrtcVersion")
    return major, minor


@functools.cache
def available() -> bool:
    """Whether NVRTC can be loaded here (cached: the launchers ask on every call, and Python does not cache a failed
    import)."""
    try:
        nvrtc_version()
    except NvrtcUnavailable:
        return False
    return True


@functools.cache
def warn_unavailable(what: str) -> None:
    """Warn once per ``what`` that NVRTC is missing, so that ``what`` runs a slower path, and how to enable it."""
    try:
        nvrtc_version()
        return
    except NvrtcUnavailable as exc:
        reason = str(exc)
    warnings.warn(f"{what} runs its slower fallback: {reason}", RuntimeWarning, stacklevel=3)


def _check(nvrtc, err, call: str) -> None:
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        raise RuntimeError(f"{call} failed: {nvrtc.nvrtcGetErrorString(err)[1].decode()}")


def device_arch(device: torch.device | int | None = None) -> str:
    """``sm_XY`` of a CUDA device (the current one by default)."""
    major, minor = torch.cuda.get_device_capability(device)
    return f"sm_{major}{minor}"


def compile_options(defines: Mapping[str, object], arch: str) -> tuple[str, ...]:
    """NVRTC's options for ``arch`` with the compile-time constants ``defines`` (sorted, so equal sets give equal
    options and one cache entry). ``-Xptxas -v`` puts the register and spill counts in the log."""
    if not re.fullmatch(r"sm_\d+[a-z]?", arch):
        raise ValueError(f"arch must look like sm_90, got {arch!r}")
    bad = [k for k in defines if not re.fullmatch(r"[A-Za-z_]\w*", k)]
    if bad:
        raise ValueError(f"not macro names: {bad}")
    return (f"--gpu-architecture={arch}", "--std=c++17", "--ptxas-options=-v",
            *(f"-D{k}={defines[k]}" for k in sorted(defines)))  # fmt: skip


def cache_key(source: Source, options: Sequence[str], version: tuple[int, int]) -> str:
    """A hex digest of everything the machine code depends on: the source and header texts, the options (the
    architecture and the constants among them) and NVRTC's version."""
    h = hashlib.sha256()
    for part in (source.name, source.text, *(s for header in source.headers for s in header), *options, str(version)):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def cache_dir() -> Path:
    """Where compiled kernels are kept: ``$ADAPTCONV_CACHE_DIR``, else ``$XDG_CACHE_HOME/adaptconv/nvrtc`` (by
    default ``~/.cache/adaptconv/nvrtc``)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "adaptconv" / "nvrtc"


@dataclass(frozen=True)
class Compiled:
    """A cubin and NVRTC's log (empty when it was read from the cache)."""

    cubin: bytes
    log: str
    cached: bool


def compile_cubin(source: Source, defines: Mapping[str, object], arch: str) -> Compiled:
    """The cubin of ``source`` for ``arch`` with ``defines``: from the disk cache, or compiled now and cached."""
    options = compile_options(defines, arch)
    version = nvrtc_version()
    path = cache_dir() / f"{Path(source.name).stem}-{arch}-{cache_key(source, options, version)[:32]}.cubin"
    try:
        return Compiled(path.read_bytes(), "", cached=True)
    except OSError:
        pass
    cubin, log = _compile(source, options)
    try:
        atomic_write(path, lambda f: f.write(cubin))
    except OSError as exc:  # a read-only or full disk costs a compile per process, nothing else
        warnings.warn(f"could not cache a compiled kernel in {path.parent}: {exc}", RuntimeWarning, stacklevel=2)
    return Compiled(cubin, log, cached=False)


def _compile(source: Source, options: Sequence[str]) -> tuple[bytes, str]:
    """NVRTC on ``source``: (cubin, log), or CompileError with the log."""
    nvrtc = _bindings()
    names = [name.encode() for name, _ in source.headers]
    texts = [text.encode() for _, text in source.headers]
    err, prog = nvrtc.nvrtcCreateProgram(source.text.encode(), source.name.encode(), len(names), texts, names)
    _check(nvrtc, err, "nvrtcCreateProgram")
    try:
        opts = [o.encode() for o in options]
        (err,) = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
        err_log, size = nvrtc.nvrtcGetProgramLogSize(prog)
        _check(nvrtc, err_log, "nvrtcGetProgramLogSize")
        log = b" " * size
        nvrtc.nvrtcGetProgramLog(prog, log)
        log = log.rstrip(b"\0 ").decode(errors="replace")
        if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
            raise CompileError(source.name, options, log)
        err, size = nvrtc.nvrtcGetCUBINSize(prog)
        _check(nvrtc, err, "nvrtcGetCUBINSize")
        cubin = b" " * size
        (err,) = nvrtc.nvrtcGetCUBIN(prog, cubin)
        _check(nvrtc, err, "nvrtcGetCUBIN")
        return cubin, log
    finally:
        nvrtc.nvrtcDestroyProgram(prog)


def _driver():
    from cuda.bindings import driver

    return driver


def _checked(result, call: str):
    """The values of a driver call's result tuple after its error code, or RuntimeError naming the error."""
    driver = _driver()
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != driver.CUresult.CUDA_SUCCESS:
        name = driver.cuGetErrorName(err)[1]
        raise RuntimeError(f"{call} failed: {name.decode() if isinstance(name, bytes) else err}")
    return values[0] if len(values) == 1 else values


class Function:
    """A loaded kernel of one device: :meth:`launch` runs it on PyTorch's current stream of that device."""

    def __init__(self, handle, name: str, device: int):
        self.handle, self.name, self.device = handle, name, device
        self._max_dynamic_smem = 48 * 1024

    def launch(self, grid: tuple[int, int, int], block: tuple[int, int, int], smem: int,
               args: Sequence[ctypes._SimpleCData | ctypes.Structure]) -> None:  # fmt: skip
        """Launch on the current stream; ``args`` are the kernel's parameters as ctypes values, in order."""
        driver = _driver()
        if smem > self._max_dynamic_smem:
            attr = driver.CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
            _checked(driver.cuFuncSetAttribute(self.handle, attr, smem), "cuFuncSetAttribute")
            self._max_dynamic_smem = smem
        _make_current(self.device)
        pointers = (ctypes.c_void_p * len(args))(*(ctypes.addressof(a) for a in args))
        stream = torch.cuda.current_stream(self.device).cuda_stream
        _checked(driver.cuLaunchKernel(self.handle, *grid, *block, smem, stream, ctypes.addressof(pointers), 0),
                 f"cuLaunchKernel({self.name})")  # fmt: skip


_lock = threading.Lock()
_modules: dict[tuple, object] = {}
_functions: dict[tuple, Function] = {}


def _make_current(device: int) -> None:
    """Make PyTorch's (primary) context of ``device`` current on this thread if no context is (PyTorch's own calls
    make it current; a thread that made none, e.g. autograd's, may have none yet)."""
    driver = _driver()
    if int(_checked(driver.cuCtxGetCurrent(), "cuCtxGetCurrent")) == 0:
        primary = driver.cuDevicePrimaryCtxRetain(_checked(driver.cuDeviceGet(device), "cuDeviceGet"))
        _checked(driver.cuCtxSetCurrent(_checked(primary, "cuDevicePrimaryCtxRetain")), "cuCtxSetCurrent")


def get_function(source: Source, defines: Mapping[str, object], name: str, device: torch.device) -> Function:
    """Kernel ``name`` of ``source`` compiled with ``defines`` for ``device``'s architecture, loaded on it (once per
    process and module: later calls are a dictionary look-up)."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    module_key = (source, tuple(sorted(defines.items())), index)
    key = (*module_key, name)
    function = _functions.get(key)
    if function is not None:
        return function
    with _lock:
        if key not in _functions:
            driver = _driver()
            with torch.cuda.device(index):
                torch.cuda.current_stream(index)  # PyTorch initialises the device and makes its context current
                _make_current(index)
                if module_key not in _modules:
                    compiled = compile_cubin(source, defines, device_arch(index))
                    _modules[module_key] = _checked(driver.cuModuleLoadData(compiled.cubin), "cuModuleLoadData")
                handle = _checked(driver.cuModuleGetFunction(_modules[module_key], name.encode()),
                                  "cuModuleGetFunction")  # fmt: skip
            _functions[key] = Function(handle, name, index)
        return _functions[key]
