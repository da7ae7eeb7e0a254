#!/usr/bin/env bash
# One device call: versions, the GPU tests and the engine tests on torch 2.11, the demo on CUDA.
# Usage (device tool): bash benchmarks/gpu_check.sh   (writes under $OUT)
set -u
export PYTHONPATH=$PWD
OUT=${OUT:-/tmp/vexplore-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch, triton, sys; print(sys.version.split()[0], torch.__version__, triton.__version__)" | tee -a "$OUT/gpu.txt"
timeout 300 python3 -m pytest -q -p no:cacheprovider -x tests/gpu tests/test_engine.py tests/test_fallback.py \
  tests/test_persist.py tests/test_workers.py > "$OUT/pytest.txt" 2>&1; echo "pytest rc=$?" >> "$OUT/pytest.txt"
tail -5 "$OUT/pytest.txt"
timeout 200 python3 -m vexplore demo --device cuda --cache-dir /tmp/vx-demo > "$OUT/demo-cuda.txt" 2>&1
timeout 100 python3 -m vexplore demo --device cuda --cache-dir /tmp/vx-demo > "$OUT/demo-cuda-warm.txt" 2>&1
cat "$OUT/demo-cuda.txt"; tail -8 "$OUT/demo-cuda-warm.txt"
