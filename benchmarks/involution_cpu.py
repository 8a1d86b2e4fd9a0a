"""CPU: one training step of the default run's model with the involution's unfold path against its tap loop.

    python benchmarks/involution_cpu.py         # writes benchmarks/results/involution_cpu.json

Both paths run in the same process, alternately, on the same model and batch (RedNet-26 at half width, 28x28
grey, batch 64, as ``adaptconv train`` with no arguments); the median of the repetitions is reported.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

import adaptconv
import adaptconv.ops.involution_cpu as cpu_kernels

RESULTS = Path(__file__).resolve().parent / "results"
PATHS = {"tap loop": 0, "unfold": cpu_kernels.UNFOLD_MAX_BYTES}


def main(repeats: int = 7, batch: int = 64) -> None:
    torch.manual_seed(0)
    model = adaptconv.create_model("rednet26", num_classes=10, in_chans=1, channels=(32, 64, 128, 256))
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> float:
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in PATHS}
    for _ in range(repeats):
        for name, limit in PATHS.items():
            cpu_kernels.UNFOLD_MAX_BYTES = limit
            step()  # warm-up of this path
            times[name].append(step())
    med = {name: statistics.median(t) for name, t in times.items()}
    record = dict(
        what="RedNet-26 width 0.5, 28x28x1, batch 64: one SGD training step on the CPU",
        ms={name: round(1000 * t, 1) for name, t in med.items()},
        speedup_unfold=round(med["tap loop"] / med["unfold"], 2),
        torch_threads=torch.get_num_threads(), torch=torch.__version__,
        date=datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    )  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "involution_cpu.json").write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
