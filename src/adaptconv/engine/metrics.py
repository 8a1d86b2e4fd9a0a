"""Classification metrics summed over batches and ranks: loss, top-1 and top-5 correct counts."""

from __future__ import annotations

import torch
from torch import Tensor

from .distributed import DistContext, all_reduce_sum

__all__ = ["ClassificationMeter"]


class ClassificationMeter:
    """Accumulates loss and top-k hits on the device (no host sync per batch); ``result()`` sums over ranks."""

    def __init__(self, device: torch.device, topk: tuple[int, ...] = (1, 5)) -> None:
        self.topk = topk
        self.sums = torch.zeros(2 + len(topk), dtype=torch.float64, device=device)  # loss*n, n, hits per k

    def update(self, loss: Tensor, logits: Tensor | None, target: Tensor | None, n: int) -> None:
        parts = [loss.detach().double() * n, torch.tensor(float(n), dtype=torch.float64, device=self.sums.device)]
        if logits is not None and target is not None:
            k = min(max(self.topk), logits.shape[1])
            pred = logits.detach().topk(k, dim=1).indices
            hit = pred.eq(target[:, None])
            parts += [hit[:, : min(t, k)].any(1).sum().double() for t in self.topk]
        else:
            parts += [torch.zeros((), dtype=torch.float64, device=self.sums.device) for _ in self.topk]
        self.sums += torch.stack(parts)

    def result(self, ctx: DistContext) -> dict[str, float]:
        """Mean loss and top-k accuracy (percent) over everything seen by all ranks."""
        s = all_reduce_sum(self.sums, ctx)
        n = max(s[1].item(), 1.0)
        out = {"loss": s[0].item() / n, "count": int(s[1].item())}
        out.update({f"top{k}": 100.0 * s[2 + i].item() / n for i, k in enumerate(self.topk)})
        return out
