#!/usr/bin/env bash
# One device call of this session's GPU work: bash benchmarks/gpu/session.sh PART (output under $OUT).
#   tests   tests/gpu (CUDA graphs by default, the HF decode loop, profiles, the tuner, notebook 02) + buffers
#   speed   issue 25's figures: the HF decode loop at defaults against reduce-overhead, parity rounds
#   tune    issue 26/27's figures: profiles of the toy and HF Llama, vx.tune of the 8-layer toy
# Carry .whl (../shared/tools/device-wheels, plus optuna and its dependencies).
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
esac
