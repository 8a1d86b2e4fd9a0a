"""benchmarks/kernel_sass.py: the SASS listing parsed into instructions and loops; on a machine with NVRTC, a whole
module's entry points read."""

from __future__ import annotations

import json

import pytest

from adaptconv.ops import nvrtc
from benchmarks import kernel_sass

LISTING = """
        /*0000*/                   MOV R1, c[0x0][0x28] ;
        /*0010*/                   FFMA R2, R3, R4, R2 ;
        /*0020*/              @!P0 LDG.E.128.CONSTANT R4, desc[UR4][R6.64] ;
        /*0030*/                   FFMA R5, R3, R4, R5 ;
        /*0040*/               @P1 BRA `(.L_x_3) 0x10 ;
        /*0050*/                   EXIT ;
"""


def test_listing_and_loops():
    listing = kernel_sass.instructions(LISTING)
    assert [op for _, op, _ in listing] == ["MOV", "FFMA", "LDG", "FFMA", "BRA", "EXIT"]
    (loop,) = kernel_sass.loops(listing)  # the branch back to 0x10
    assert (loop["first"], loop["last"], loop["instructions"]) == (1, 4, 4)
    assert (loop["FFMA"], loop["LDG"], loop["BRA"]) == (2, 1, 1)


@pytest.mark.skipif(not nvrtc.available(), reason="NVRTC (cuda-bindings) is not installed")
def test_every_entry_point_of_a_module(tmp_path):
    kernel_sass.main(["--dtype", "fp32", "--kernel-size", "3", "--output", str(tmp_path)])
    rows = json.loads((tmp_path / "kernel_sass-cpu.json").read_text())["rows"]
    entries = {"aggregate_forward", "aggregate_backward_input", "aggregate_backward_weight_any",
               "aggregate_backward_weight_gc16"}  # fmt: skip
    assert {r["entry"] for r in rows} == entries
    for r in rows:
        assert r["instructions"] > r["FFMA"] > 0 and r["spill_bytes"] == 0 and r["loops"]
