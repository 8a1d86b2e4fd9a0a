#!/usr/bin/env bash
# The GPU measurements behind the README's "Speed" section, in one command (run from the repository root):
#
#     bash benchmarks/gpu_suite.sh [OUT_DIR] [PART ...]    # parts: tests models modes fused latency op configs profile
#                                                       bound scnet
#                                                       (default: all)
#
# tests:   the GPU tests (pytest -m gpu; one tile shape a kernel, see tests/conftest.py), log in OUT_DIR/gpu_tests.log
# models:  RedNet-26/50/101 and SCNet-50/101/50_v1d against their ResNets, train (batch 128) and inference
#          (batch 256), bf16, channels_last, eager
# modes:   RedNet-50 against ResNet-50 compiled, and compiled with CUDA graphs (reduce-overhead)
# fused:   RedNet-50 with fused kernel generation, and also with its stem recomputed in the backward pass, against
#          the stored-kernel path, same settings
# latency: inference at batch 1
# op:      the aggregation alone at RedNet-50's layer shapes against the copy bandwidth (and the fused-op bench),
#          then the channels_last kernel families side by side (pixel-block, band)
# configs: every tuning configuration of the channels_last kernels at RedNet-50's shapes, pixel-block and band
# profile: one training step of RedNet-50, SCNet-50 and ResNet-50 by kernel category, eager and compiled
# bound:   RedNet-50 with an aggregation, span conv + aggregation, and whole involutions that cost nothing, then with
#          involutions that only copy (then also with the norms and ReLUs around them gone), eager and with CUDA
#          graphs (CUDA-graph training one level a process: all of them in one take over 5 minutes); the stride
#          pool's two implementations
# scnet:   SCNet's runs of docs/scnet_speed.md: the models with the fused calibration and with the official ops
#          (+unfused), at batch 1 and 8, compiled and with CUDA graphs; the profile by module role; one bottleneck;
#          the bound with the self-calibration free (CUDA graphs; training one process, inference another); the
#          pooling paths at K2's 4x4 windows (the bound part times them at the involution's 2x2)
# Each part writes its JSON and Markdown files to OUT_DIR (default benchmarks/results). Kernel tuning results are
# kept on disk (TRITON_CACHE_AUTOTUNING=1), so a second run of the script does not tune again.
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
shift || true
parts=${*:-tests models modes fused latency op configs profile bound scnet}
export TRITON_CACHE_AUTOTUNING=1 PYTHONUNBUFFERED=1
bench() { python -m adaptconv.cli.main benchmark "$@" --output "$out" --overwrite --plot; }
status=0
for part in $parts; do
  case $part in
    tests) python -m pytest -m gpu -q -p no:cacheprovider tests > "$out/gpu_tests.log" 2>&1 || status=1
           tail -3 "$out/gpu_tests.log" ;;
    models) bench rednet26 rednet50 rednet101 --name rednet || status=1
            bench scnet50 scnet50+unfused scnet101 scnet50_v1d --name scnet || status=1 ;;
    modes) bench rednet50 --mode compile --name rednet50-compile || status=1
           bench rednet50 --mode reduce-overhead --name rednet50-reduce-overhead || status=1 ;;
    fused) bench rednet50+fused rednet50+fused+recompute --name rednet50-variants || status=1 ;;
    latency) bench rednet50 scnet50 --task inference --batch-size 1 --name latency || status=1 ;;
    op) python benchmarks/involution_op.py --out "$out" || status=1
        python benchmarks/involution_fused.py --out "$out" || status=1
        python benchmarks/involution_op.py --dtype bfloat16 --memory-format channels_last \
          --impl triton-pixel triton-band --name=-band_vs_pixel --out "$out" || status=1 ;;
    configs) python benchmarks/involution_configs.py --out "$out" || status=1
             python benchmarks/involution_configs.py --family band --name=-band --out "$out" || status=1 ;;
    profile) python benchmarks/profile_step.py rednet50 scnet50 resnet50 --out "$out" || status=1
             python benchmarks/profile_step.py rednet50 resnet50 --mode compile --out "$out" || status=1 ;;
    bound) python benchmarks/free_aggregation.py --out "$out" || status=1
           python benchmarks/free_aggregation.py --modes reduce-overhead --tasks inference \
             --name=-reduce-overhead-inference-all --out "$out" || status=1
           for level in aggregation generation involution copy copy_norms; do
             python benchmarks/free_aggregation.py --modes reduce-overhead --tasks train --levels $level \
               --name=-reduce-overhead-train-$level --out "$out" || status=1
           done
           python benchmarks/stride_pool.py --out "$out" || status=1 ;;
    scnet) bench scnet50 scnet50+unfused --task inference --batch-size 1 8 --name scnet50-small-batch || status=1
           bench scnet50 --mode compile --name scnet50-compile || status=1
           bench scnet50 scnet50+unfused --mode reduce-overhead --name scnet50-fused-reduce-overhead || status=1
           bench scnet50 --task inference --batch-size 1 --mode eager reduce-overhead --name scnet50-latency \
             || status=1
           bench scnet101 scnet50_v1d --task inference --mode reduce-overhead \
             --name scnet-reduce-overhead-inference || status=1
           bench scnet50_v1d --task train --mode reduce-overhead --name scnet50_v1d-reduce-overhead-train || status=1
           python benchmarks/profile_roles.py scnet50 scnet50+unfused resnet50 --out "$out" || status=1
           python benchmarks/scnet_block.py --out "$out" || status=1
           python benchmarks/stride_pool.py --window 4 --out "$out" || status=1
           python benchmarks/free_calibration.py --tasks train --name=-reduce-overhead-train --out "$out" || status=1
           python benchmarks/free_calibration.py --tasks inference --name=-reduce-overhead-inference --out "$out" \
             || status=1 ;;
    *) echo "unknown part '$part': choose from tests models modes fused latency op configs profile bound scnet" >&2
       exit 2 ;;
  esac
done
exit $status
