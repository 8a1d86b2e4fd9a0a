#!/usr/bin/env bash
# The GPU measurements behind the README's "Speed" section, in one command (run from the repository root):
#
#     bash benchmarks/gpu_suite.sh [OUT_DIR] [PART ...]    # parts: tests models modes fused latency first op
#                                                       profile bound scnet
#                                                       (default: all)
#
# tests:   the GPU tests (pytest -m gpu; one tile shape a kernel, see tests/conftest.py), log in OUT_DIR/gpu_tests.log
# models:  RedNet-26/50/101 and SCNet-50/101/50_v1d against their ResNets, train (batch 128) and inference
#          (batch 256), bf16, channels_last, eager
# modes:   RedNet-50 against ResNet-50 compiled, and compiled with CUDA graphs (reduce-overhead)
# fused:   RedNet-50 with fused kernel generation, and also with its stem recomputed in the backward pass, against
#          the stored-kernel path, same settings
# latency: inference at batch 1
# first:   the first-call cost (kernel compiles and tuning) of RedNet-50 and ResNet-50 at 128 px, cold and warm caches
# op:      the aggregation alone at RedNet-50's layer shapes against the copy bandwidth (and the fused-op bench)
# profile: one training step of RedNet-50, SCNet-50 and ResNet-50 by kernel category, eager and compiled
# bound:   RedNet-50 with an aggregation, span conv + aggregation, and whole involutions that cost nothing, then with
#          involutions that only copy (then also with the norms and ReLUs around them gone), eager and with CUDA
#          graphs (CUDA-graph training one level a process: all of them in one take over 5 minutes); the stride
#          pool's two implementations
# scnet:   SCNet's runs of docs/scnet_speed.md: the merged block against the official code's layers and ops
#          (+official, +unfused) and the three variants' table, folded and batch-1 inference, the step profile; the
#          models with the fused calibration (+fused_gate) and with the official ops, at batch 1 and 8, compiled and with CUDA graphs; the profile by module role; one bottleneck;
#          the bound with the self-calibration free (CUDA graphs; training one process, inference another); the
#          pooling paths at K2's 4x4 windows (the bound part times them at the involution's 2x2)
# Each part writes its JSON and Markdown files to OUT_DIR (default benchmarks/results). Kernel tuning results are
# kept on disk (TRITON_CACHE_AUTOTUNING=1), so a second run of the script does not tune again.
set -uo pipefail
out=${1:-benchmarks/results}
mkdir -p "$out"
shift || true
parts=${*:-tests models modes fused latency first op profile bound scnet}
export TRITON_CACHE_AUTOTUNING=1 PYTHONUNBUFFERED=1
bench() { python -m adaptconv.cli.main benchmark "$@" --output "$out" --overwrite --plot; }
script() { local name=$1; shift; python -m "benchmarks.$name" "$@" --output "$out"; }  # a script of benchmarks/
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
    first) script first_call || status=1 ;;
    op) script involution_op || status=1
        script involution_fused || status=1 ;;
    profile) script profile_step --models rednet50 scnet50 resnet50 || status=1
             script profile_step --models rednet50 resnet50 --mode compile || status=1 ;;
    bound) script free_aggregation || status=1
           script free_aggregation --mode reduce-overhead --task inference --name reduce-overhead-inference-all \
             || status=1
           for level in aggregation generation involution copy copy_norms; do
             script free_aggregation --mode reduce-overhead --task train --levels $level \
               --name reduce-overhead-train-$level || status=1
           done
           script stride_pool || status=1 ;;
    scnet) bench scnet50 scnet50+unfused scnet50+official scnet50+official+unfused --name scnet-merged || status=1
           bench scnet50 scnet50+official+unfused scnet101 scnet50_v1d --name scnet-merged-table || status=1
           bench scnet50 --task inference --batch-size 1 256 --fold no yes --name scnet50-fold-latency || status=1
           script profile_step --models scnet50 scnet50+official+unfused --name merged || status=1
           bench scnet50 scnet50+fused_gate --task inference --batch-size 1 8 --name scnet50-small-batch || status=1
           bench scnet50 --mode compile --name scnet50-compile || status=1
           bench scnet50 scnet50+fused_gate --mode reduce-overhead --name scnet50-fused-reduce-overhead || status=1
           bench scnet50 --task inference --batch-size 1 --mode eager reduce-overhead --name scnet50-latency \
             || status=1
           bench scnet101 scnet50_v1d --task inference --mode reduce-overhead \
             --name scnet-reduce-overhead-inference || status=1
           bench scnet50_v1d --task train --mode reduce-overhead --name scnet50_v1d-reduce-overhead-train || status=1
           script profile_roles --models scnet50 scnet50+fused_gate resnet50 || status=1
           script scnet_block || status=1
           script stride_pool --window 4 || status=1
           script free_calibration --task train --name reduce-overhead-train || status=1
           script free_calibration --task inference --name reduce-overhead-inference || status=1 ;;
    *) echo "unknown part '$part': choose from tests models modes fused latency first op profile bound scnet" >&2
       exit 2 ;;
  esac
done
exit $status
