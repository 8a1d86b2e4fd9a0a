"""How long the command line takes to start, against ``python -c "import torch"`` on the same machine, and which
shared libraries a command pages in (what a first run after installing reads from disk).

    python -m benchmarks.startup_time                  # writes benchmarks/results/startup_time-cpu.json
    python -m benchmarks.startup_time --repeats 20 --libraries "visualize --image-size 64"

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

from . import flags, record

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


def resident_libraries(command: str) -> dict[str, int]:
    """Resident bytes of the files that ``adaptconv COMMAND`` maps, per installed package."""
    result = subprocess.run([sys.executable, "-c", _RESIDENT, *shlex.split(command)], capture_output=True, text=True,
                            check=True)  # fmt: skip
    line = next(x for x in result.stderr.splitlines() if x.startswith("RESIDENT "))
    return json.loads(line[len("RESIDENT ") :])


def parser() -> argparse.ArgumentParser:
    ap = flags.parser("startup_time", __doc__, repeats=10)
    ap.add_argument("--libraries", metavar="COMMAND", help="also measure the libraries 'adaptconv COMMAND' pages in")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
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
    facts: dict = {}
    if args.libraries:
        facts["resident_libraries"] = dict(command=f"adaptconv {args.libraries}",
                                           bytes=resident_libraries(args.libraries))  # fmt: skip
    path = record.write(args, "cpu", rows, **facts)
    for r in rows:
        print(f"{r['command']:28s} {r['median_s']:.2f} s (median of {args.repeats}; "
              f"{r['ratio_to_import_torch']:.2f}x import torch)")  # fmt: skip
    if args.libraries:
        resident = facts["resident_libraries"]["bytes"]
        print(f"adaptconv {args.libraries}: {sum(resident.values()) / 2**20:.0f} MiB of mapped files resident: "
              + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in list(resident.items())[:6]))  # fmt: skip
    print(f"-> {path}")


if __name__ == "__main__":
    main()
