import torch

import adaptconv
from adaptconv.ops import Involution2d


def test_fused_involution_is_the_same_model():
    ref = adaptconv.create_model("rednet26", num_classes=10, channels=(16, 32, 64, 128)).double()
    fused = adaptconv.create_model("rednet26", num_classes=10, channels=(16, 32, 64, 128), fused_involution=True)
    fused = fused.double()
    fused.load_state_dict(ref.state_dict())
    involutions = [m for m in fused.modules() if isinstance(m, Involution2d)]
    assert len(involutions) == 1 + 8 and all(m.fused for m in involutions)  # stem and one per block
    assert not any(m.fused for m in ref.modules() if isinstance(m, Involution2d))
    x = torch.randn(2, 3, 45, 38, dtype=torch.float64)
    y, yf = ref(x), fused(x)
    torch.testing.assert_close(yf, y, rtol=1e-10, atol=1e-10)
    y.sum().backward()
    yf.sum().backward()
    for (name, a), b in zip(ref.named_parameters(), fused.parameters(), strict=True):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-8, atol=1e-10, msg=name)
