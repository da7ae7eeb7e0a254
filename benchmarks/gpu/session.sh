#!/usr/bin/env bash
# One device call of this session's GPU work: bash benchmarks/gpu/session.sh PART (output under $OUT).
#   tests   tests/gpu (CUDA graphs by default, the HF decode loop, profiles, the tuner, notebook 02) + buffers
#   speed   issue 25's figures: the HF decode loop at defaults against reduce-overhead, parity rounds
#   tune    issue 26/27's figures: profiles of the toy and HF Llama, vx.tune of the 8-layer toy
# Carry .whl (the project's device-wheels tool, plus optuna and its dependencies).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPYCACHEPREFIX=/tmp/pyc
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl 2>&1 | tail -2
  export PATH=/tmp/site/bin:$PATH
  export PYTHONPATH=/tmp/site
  python3 -m ipykernel install --user >/dev/null 2>&1
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | awk '{print tolower($2)}')
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, transformers, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__, 'triton', triton.__version__)"; } | tee "$OUT/card.txt"
case "$1" in
tests)
  timeout 420 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 240 -rfE tests/gpu \
    2>&1 | grep -v "^W1" > "$OUT/$card-tests.txt"; echo "pytest rc=$?" >> "$OUT/$card-tests.txt"
  tail -40 "$OUT/$card-tests.txt"
  timeout 90 python3 benchmarks/buffer_bench.py --device cuda --out "$OUT/$card-buffers.json" 2>&1 | grep -v "^W1" | tail -25
  ;;
speed)
  timeout 300 python3 benchmarks/hf_decode.py --default --generations 5 --gen-steps 48 --lengths 256 64 16 \
    --timers idle --out "$OUT/$card-hf-static-{timer}.json" 2>&1 | grep -v "^W1" | tail -45
  timeout 270 python3 benchmarks/decode.py parity --rounds 7 --out "$OUT/$card-parity.json" 2>&1 | grep -v "^W1" | tail -12
  ;;
tune)
  timeout 240 python3 benchmarks/profile_gpu.py --out "$OUT/$card-profile.json" 2>&1 | grep -v "^W1" | tail -40
  timeout 330 python3 benchmarks/tune_gpu.py --budget 240 --out "$OUT/$card-tune.json" 2>&1 | grep -v "^W1" | tail -30
  ;;
final)   # the fixes of this session's first calls, checked, and the figures they allow, in one call
  timeout 170 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 120 -rfE tests/gpu/test_defaults.py \
    tests/gpu/test_profile_gpu.py tests/gpu/test_inplace.py tests/gpu/test_hf.py 2>&1 | grep -v "^W1" > "$OUT/$card-tests-final.txt"
  echo "pytest rc=$?" >> "$OUT/$card-tests-final.txt"; grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-final.txt" | head -30
  timeout 130 python3 benchmarks/hf_decode.py --default --generations 5 --gen-steps 48 --lengths 256 64 16 \
    --timers idle --budget 1.0 --out "$OUT/$card-hf-static-{timer}.json" > "$OUT/$card-hf-static.txt" 2>&1
  grep -v "^W1" "$OUT/$card-hf-static.txt" | grep -v "^ *File\|^    " | tail -32
  timeout 100 python3 benchmarks/profile_gpu.py --out "$OUT/$card-profile.json" 2>&1 | grep -v "^W1" | tail -40
  ;;
check)   # session 4, call 1: the CPU-only fixes of session 3 on the GPU, then the decode loop at defaults
  timeout 300 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 150 -rfE tests/gpu/test_defaults.py \
    tests/gpu/test_profile_gpu.py tests/gpu/test_tune_gpu.py tests/gpu/test_hf.py \
    "tests/gpu/test_cuda.py::test_full_and_piecewise_serves_small_sizes_full" 2>&1 | grep -v "^W1" > "$OUT/$card-tests-check.txt"
  echo "pytest rc=$?" >> "$OUT/$card-tests-check.txt"; grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-check.txt" | head -30
  timeout 150 python3 benchmarks/hf_decode.py --default --generations 5 --gen-steps 48 --lengths 256 64 16 \
    --timers idle --budget 1.0 --out "$OUT/$card-hf-static-{timer}.json" > "$OUT/$card-hf-static.txt" 2>&1
  grep -v "^W1" "$OUT/$card-hf-static.txt" | grep -v "^ *File\|^    " | tail -32
  ;;
last)   # session 5, call 1, most wanted first (what ran before a time-out still comes back)
  timeout 200 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 150 -rfE tests/gpu/test_profile_gpu.py \
    "tests/gpu/test_cuda.py::test_cudagraph_whole_replays_the_graph_compiled_whole_at_full_sizes" \
    2>&1 | grep -v "^W1" > "$OUT/$card-tests-profile.txt"; echo "pytest rc=$?" >> "$OUT/$card-tests-profile.txt"
  grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-profile.txt" | cut -c1-700 | head -20
  timeout 170 python3 benchmarks/profile_gpu.py --out "$OUT/$card-profile.json" 2>&1 | grep -v "^W1" | cut -c1-300 | tail -40
  timeout 170 python3 benchmarks/gpu/debug_s4.py tune 2>&1 | grep -v "^W1" > "$OUT/$card-debug-s4.txt"; grep -v "^ *[0-9]* ms " "$OUT/$card-debug-s4.txt" | cut -c1-400 | tail -30
  ;;
s5b)   # session 5, call 2: the profile's GEMM mapping and the tuner's deadline, checked; their figures (most wanted first)
  timeout 120 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 110 -rfE tests/gpu/test_profile_gpu.py \
    2>&1 | grep -v "^W1" > "$OUT/$card-tests-profile.txt"; echo "pytest rc=$?" >> "$OUT/$card-tests-profile.txt"
  grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-profile.txt" | cut -c1-900 | head -12
  timeout 110 python3 benchmarks/profile_gpu.py --out "$OUT/$card-profile.json" 2>&1 | grep -v "^W1" | cut -c1-330 | grep -v "^     " | tail -12
  timeout 160 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 150 -rfEP tests/gpu/test_tune_gpu.py \
    2>&1 | grep -v "^W1" > "$OUT/$card-tests-tune.txt"; echo "pytest rc=$?" >> "$OUT/$card-tests-tune.txt"
  grep -E "passed|failed|^FAILED|^E |^tune of|^  *[0-9]+\*? *(ok|worse|pruned|crashed|timeout|failed)|^improvement" "$OUT/$card-tests-tune.txt" | cut -c1-300 | head -30
  timeout 230 python3 benchmarks/tune_gpu.py --budget 110 --out "$OUT/$card-tune.json" 2>&1 | grep -v "^W1" | tail -30
  ;;
s5c)   # session 5, if device time is left: parity rounds with the whole-graph diagnostic
  timeout 260 python3 benchmarks/decode.py parity --rounds 7 --out "$OUT/$card-parity.json" 2>&1 | grep -v "^W1" | tail -12
  ;;
s6a)   # session 6, call 1: does the whole-graph capture reach parity, and what does it cost the first call?
  timeout 230 python3 benchmarks/decode.py parity --rounds 5 --out "$OUT/$card-parity.json" 2>&1 | grep -v "^W1" | tail -12
  timeout 330 python3 benchmarks/decode.py first-call --layers 8 --first-variants torch-default torch-reduce-overhead \
    vexplore-default "vexplore-default[cudagraph_whole]" --out "$OUT/$card-first-call-whole.json" 2>&1 | grep -v "^W1" | cut -c1-400 | tail -14
  ;;
s6b)   # session 6, call 2: the span by CUDA events without the profiler (issue 26), checked and measured
  timeout 150 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 140 -rfE tests/gpu/test_profile_gpu.py \
    2>&1 | grep -v "^W1" > "$OUT/$card-tests-profile.txt"; echo "pytest rc=$?" >> "$OUT/$card-tests-profile.txt"
  grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-profile.txt" | cut -c1-900 | head -12
  timeout 150 python3 benchmarks/profile_gpu.py --out "$OUT/$card-profile.json" 2>&1 | grep -v "^W1" | cut -c1-420 | grep -v "^     " | tail -12
  timeout 100 python3 benchmarks/gpu/host_s6.py 2>&1 | grep -v "^W1" | cut -c1-250 | tail -40
  timeout 150 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 140 -rfE tests/gpu/test_cuda.py -k "whole" \
    2>&1 | grep -v "^W1" > "$OUT/$card-tests-whole.txt"; echo "pytest rc=$?" >> "$OUT/$card-tests-whole.txt"
  grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-whole.txt" | cut -c1-600 | head -12
  ;;
next)   # the next session's first call: what session 6 built and could not run (most wanted first)
  timeout 130 python3 -m pytest -q -p no:cacheprovider -p no:randomly --timeout 120 -rfE tests/gpu/test_profile_gpu.py \
    tests/gpu/test_cuda.py -k "attributed or replayed_kernels or whole or first_call" 2>&1 | grep -v "^W1" > "$OUT/$card-tests-next.txt"
  echo "pytest rc=$?" >> "$OUT/$card-tests-next.txt"; grep -E "passed|failed|^FAILED|^E " "$OUT/$card-tests-next.txt" | cut -c1-700 | head -10
  timeout 110 python3 benchmarks/profile_gpu.py --out "$OUT/$card-profile.json" 2>&1 | grep -v "^W1" | cut -c1-460 | grep -v "^     " | tail -6
  timeout 130 python3 benchmarks/decode.py first-call --layers 8 --first-variants torch-default vexplore-default \
    "vexplore-default[cudagraph_whole=background]" "vexplore-default[cudagraph_capture=first_call]" \
    "vexplore-default[background, first_call]" --states cold warm --out "$OUT/$card-first-call-next.json" 2>&1 | grep -v "^W1" | cut -c1-300 | tail -12
  timeout 200 python3 benchmarks/decode.py parity --rounds 5 --out "$OUT/$card-parity-background.json" 2>&1 | grep -v "^W1" | tail -6
  timeout 70 python3 benchmarks/gpu/host_s6.py 2>&1 | grep -v "^W1" | cut -c1-200 | tail -30
  ;;
esac
