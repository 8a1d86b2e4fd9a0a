#!/usr/bin/env bash
# The NVRTC-compiled aggregation kernels (ops/involution/aggregation_channels_last.cu) on a GPU, in one command (run
# from the repository root):
#
#     bash benchmarks/nvrtc_check.sh [OUT_DIR] [NAME]    # NAME: the results' name (default: check)
#
# 1. their GPU tests (tests/ops/involution/test_nvrtc_channels_last.py, then the CPU compile checks of the same file),
#    log in OUT_DIR/nvrtc_tests.log;
# 2. forward and forward + backward against the Triton kernels at RedNet-50's 7x7 layers (C64@56, C128@28, C256@14,
#    C512@7 and the stride-2 layers), bf16 and fp32, batch 64, channels_last (benchmarks/involution_op.py);
# 3. each NVRTC kernel's time with its launch plan (benchmarks/nvrtc_kernels.py);
# 4. where ncu is installed, their hardware counters at layer1, layer2.0 and layer4 (benchmarks/ncu_kernels.py
#    --impl nvrtc; report in OUT_DIR/ncu-nvrtc.ncu-rep, summary ncu_kernels-nvrtc-cuda.json).
# Every part runs even if an earlier one fails; the exit status is 1 if any failed. JSON and Markdown in OUT_DIR
# (default benchmarks/results).
set -uo pipefail
out=${1:-benchmarks/results}
name=${2:-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TRITON_CACHE_AUTOTUNING=1
status=0
layers="layer1 layer2 layer3 layer4 layer2.0 layer3.0 layer4.0"
python -m pytest -q -p no:cacheprovider tests/ops/involution/test_nvrtc_channels_last.py > "$out/nvrtc_tests.log" 2>&1 \
  || status=1
tail -5 "$out/nvrtc_tests.log"
for dtype in bf16 fp32; do
  python -m benchmarks.involution_op --layout channels_last --dtype $dtype --impl triton nvrtc --layers $layers \
    --name nvrtc-$name-$dtype --output "$out" || status=1
done
python -m benchmarks.nvrtc_kernels --dtype bf16 fp32 --layers $layers --repeats 10 --name $name --output "$out" \
  || status=1
if command -v ncu > /dev/null; then
  ncu --clock-control none --kernel-name regex:"^aggregate_" --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis --section LaunchStats \
    --section SchedulerStats -f -o "$out/ncu-nvrtc" python -m benchmarks.ncu_kernels --impl nvrtc > "$out/ncu.log" 2>&1 \
    && ncu -i "$out/ncu-nvrtc.ncu-rep" --page details --csv > "$out/ncu-nvrtc-details.csv" \
    && python -m benchmarks.ncu_kernels --impl nvrtc --summarise "$out/ncu-nvrtc-details.csv" --name nvrtc-$name \
      --output "$out" || status=1
fi
exit $status
