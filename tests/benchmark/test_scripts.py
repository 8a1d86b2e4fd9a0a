"""benchmarks/ as one tool: every script imports and answers --help on a CPU, uses only public names of the package,
writes the one result format, and gpu_suite.sh calls each with flags it accepts."""

from __future__ import annotations

import ast
import importlib
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from adaptconv.cli.main import build_parser
from benchmarks import flags, record

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
#: the modules the scripts share; every other module of benchmarks/ is a script
HELPERS = {"__init__", "aggregation", "bound", "flags", "profiling", "record", "saved_memory"}
MODULES = sorted(p.stem for p in BENCHMARKS.glob("*.py"))
SCRIPTS = [m for m in MODULES if m not in HELPERS]


def test_scripts_are_found():
    assert HELPERS < set(MODULES) and {"involution_op", "free_aggregation", "profile_step"} <= set(SCRIPTS)


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_imports_and_answers_help(name, capsys):
    script = importlib.import_module(f"benchmarks.{name}")
    assert f"python -m benchmarks.{name}" in script.__doc__  # its docstring shows how to run it
    with pytest.raises(SystemExit) as e:
        script.main(["--help"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m benchmarks.{name} ")


def _private_uses(path: Path) -> list[str]:
    """Private names of adaptconv that a module imports or reaches, and sys.path edits."""
    source = path.read_text()
    found = re.findall(r"adaptconv(?:\.\w+)*\._\w+", source) + re.findall(r"sys\.path", source)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("adaptconv"):
            found += [f"{node.module}.{a.name}" for a in node.names if a.name.startswith("_")]
            found += [node.module] if any(part.startswith("_") for part in node.module.split(".")) else []
    return found


#: the benchmarks and their tests (but this file, which writes the names it looks for)
SOURCES = [
    *BENCHMARKS.glob("*.py"),
    *(p for p in (ROOT / "tests" / "benchmark").glob("*.py") if p.name != Path(__file__).name),
]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_private_names_of_the_package_and_no_path_hacks(path):
    assert _private_uses(path) == []


def test_the_private_name_check_finds_them(tmp_path):
    bad = tmp_path / "bad.py"
    lines = ["sys.path.insert(0, 'benchmarks')", "from adaptconv.benchmark.harness import _ratio",
             "from adaptconv.models._builder import x", "y = adaptconv.benchmark.harness._step"]  # fmt: skip
    bad.write_text("\n".join(lines))
    assert _private_uses(bad) == ["adaptconv.models._builder", "adaptconv.benchmark.harness._step", "sys.path",
                                  "adaptconv.benchmark.harness._ratio", "adaptconv.models._builder"]  # fmt: skip


def _run_cheap_script(tmp_path: Path, name: str = "t") -> tuple[Path, list[str]]:
    from benchmarks import involution_memory

    argv = ["--batch-size", "1", "--channels", "16", "--size", "6", "--kernel", "3", "--dtype", "fp32",
            "--repeats", "1", "--device", "cpu", "--output", str(tmp_path), "--name", name]  # fmt: skip
    involution_memory.main(argv)
    return tmp_path / f"involution_memory-{name}-cpu.json", argv


def test_results_carry_the_one_format(tmp_path):
    path, argv = _run_cheap_script(tmp_path)
    data = json.loads(path.read_text())
    assert list(data)[:5] == ["device", "versions", "date", "command", "commit"] and list(data)[-1] == "rows"
    assert set(data["versions"]) == set(record.VERSIONS) and data["versions"]["torch"]
    assert data["command"] == "python -m benchmarks.involution_memory " + " ".join(argv)
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert data["commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    assert data["options"]["batch_size"] == 1 and "output" not in data["options"]  # no paths of the machine
    assert data["shape"]["C"] == 16  # what the script measured besides the rows
    assert {(r["impl"], r["pass_"]) for r in data["rows"]} == {
        (impl, p) for impl in ("reference", "unfold") for p in ("fwd", "fwd+bwd")
    }


def test_commit_is_none_outside_a_checkout(tmp_path):
    assert record.git_commit(tmp_path) is None


def test_facts_may_not_replace_the_records_keys(tmp_path):
    args = flags.parser("x", "").parse_args(["--output", str(tmp_path)])
    with pytest.raises(ValueError, match="'date'"):
        record.make(args, "cpu", [], date="yesterday")


def test_old_results_files_load_as_records():
    old = record.load(BENCHMARKS / "results" / "involution_op-band_vs_pixel-cuda.json")  # {meta, rows}, kept as is
    assert old["copy_GBps"] > 0 and old["device"] and old["rows"]


def test_list_defaults_take_several_values_and_dtypes_map_to_torch():
    p = flags.parser("x", "", dtype=["fp32"], task="train", batch_size=None)
    args = p.parse_args(["--dtype", "bf16", "fp16", "--batch-size", "3"])
    assert args.dtype == ["bf16", "fp16"] and args.task == "train" and args.batch_size == 3
    assert [flags.TORCH_DTYPES[d].itemsize for d in args.dtype] == [2, 2]
    with pytest.raises(SystemExit):
        p.parse_args(["--task", "train", "inference"])  # a single value where the default is one


def test_gpu_suite_calls_every_script_with_flags_it_accepts(tmp_path):
    """Runs gpu_suite.sh with a stand-in ``python`` that only logs its arguments, then parses each logged command
    with the parser of the script (or of ``adaptconv``) it calls."""
    log, fake = tmp_path / "calls.log", tmp_path / "bin"
    fake.mkdir()
    (fake / "python").write_text(f"#!/bin/sh\nprintf '%s\\t' \"$@\" >> {log}\necho >> {log}\n")
    (fake / "python").chmod(0o755)
    out = tmp_path / "out"
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    done = subprocess.run(["bash", str(BENCHMARKS / "gpu_suite.sh"), str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    calls = [line.split("\t")[:-1] for line in log.read_text().splitlines()]
    called = set()
    for argv in calls:
        assert argv[0] == "-m", argv
        if argv[1] == "pytest":
            continue
        if argv[1] == "adaptconv.cli.main":
            args = build_parser().parse_args(argv[2:])
        else:
            args = importlib.import_module(argv[1]).parser().parse_args(argv[2:])
            called.add(argv[1].removeprefix("benchmarks."))
        assert Path(args.output) == out, argv
    assert called == {"first_call", "involution_op", "involution_fused", "profile_step", "profile_roles",
                      "free_aggregation", "free_calibration", "stride_pool", "scnet_block"}  # fmt: skip
