"""How long the command line takes to start, against ``python -c "import torch"`` on the same machine, and which
shared libraries a command pages in (what a first run after installing reads from disk).

    python benchmarks/startup_time.py                  # writes benchmarks/results/startup_time-cpu.json
    python benchmarks/startup_time.py --repeats 20 --libraries "visualize --image-size 64"

Each command runs ``--repeats`` times in a fresh process, alternating with the others so that a change in the
machine's load hits all of them alike; the median wall time is reported, with its ratio to ``import torch``'s.
``--libraries COMMAND`` runs ``adaptconv COMMAND`` once more and sums the resident pages of the files it maps,
per installed package: on a first run (cold page cache) those pages come from disk.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from adaptconv.benchmark import environment

RESULTS = Path(__file__).resolve().parent / "results"
ADAPTCONV = Path(sys.executable).with_name("adaptconv")

#: prints, at the end of an ``adaptconv`` run, the resident bytes of every mapped file per installed package
_RESIDENT = """
import atexit, collections, json, re, sys
def report():
    sizes, path = collections.Counter(), None
    for line in open("/proc/self/smaps"):
        fields = line.split()
        if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            path = fields[5] if len(fields) >= 6 and fields[5].startswith("/") else None
        elif fields[0] == "Rss:" and path:
            found = re.search(r"site-packages/([^/]+)", path)
            sizes[found.group(1) if found else "(outside the environment)"] += int(fields[1]) * 1024
    print("RESIDENT " + json.dumps(dict(sizes.most_common())), file=sys.stderr)
atexit.register(report)
from adaptconv.cli.main import main
sys.argv = ["adaptconv", *sys.argv[1:]]
main()
"""


def _wall(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True)
    return result.stdout.strip() or None


def resident_libraries(command: str) -> dict[str, int]:
    """Resident bytes of the files that ``adaptconv COMMAND`` maps, per installed package."""
    result = subprocess.run([sys.executable, "-c", _RESIDENT, *shlex.split(command)], capture_output=True, text=True,
                            check=True)  # fmt: skip
    line = next(x for x in result.stderr.splitlines() if x.startswith("RESIDENT "))
    return json.loads(line[len("RESIDENT ") :])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=10, help="fresh processes per command (default 10)")
    p.add_argument("--libraries", metavar="COMMAND", help="also measure the libraries 'adaptconv COMMAND' pages in")
    p.add_argument("--output", type=Path, default=RESULTS / "startup_time-cpu.json")
    args = p.parse_args()
    commands = {
        'python -c "import torch"': [sys.executable, "-c", "import torch"],
        "adaptconv --help": [str(ADAPTCONV), "--help"],
        "adaptconv list": [str(ADAPTCONV), "list"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for argv in commands.values():  # once untimed: the page cache holds what the timed runs read
        _wall(argv)
    for _ in range(args.repeats):
        for name, argv in commands.items():
            times[name].append(_wall(argv))
    torch_s = statistics.median(times['python -c "import torch"'])
    rows = [dict(command=name, median_s=round(statistics.median(t), 3), min_s=round(min(t), 3),
                 max_s=round(max(t), 3), ratio_to_import_torch=round(statistics.median(t) / torch_s, 2))
            for name, t in times.items()]  # fmt: skip
    record = dict(
        **environment("cpu"),
        command="python benchmarks/startup_time.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        commit=_git_commit(),
        repeats=args.repeats,
        rows=rows,
    )
    if args.libraries:
        record["resident_libraries"] = dict(command=f"adaptconv {args.libraries}",
                                            bytes=resident_libraries(args.libraries))  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1) + "\n")
    for r in rows:
        print(f"{r['command']:28s} {r['median_s']:.2f} s (median of {args.repeats}; "
              f"{r['ratio_to_import_torch']:.2f}x import torch)")  # fmt: skip
    if args.libraries:
        resident = record["resident_libraries"]["bytes"]
        print(f"adaptconv {args.libraries}: {sum(resident.values()) / 2**20:.0f} MiB of mapped files resident: "
              + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in list(resident.items())[:6]))  # fmt: skip
    print(f"-> {args.output}")


if __name__ == "__main__":
    main()
