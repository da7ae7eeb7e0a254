#!/usr/bin/env bash
# Issue 23's GPU checks in one device call: the cache-bounds decode loop under every cudagraph mode,
# the HF and CUDA tests, and the restart/patch/user-error tests on torch 2.11. Output under $OUT.
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PYTHONPYCACHEPREFIX=/tmp/pyc
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/card.txt"
python3 -c "import torch, transformers, triton; print('torch', torch.__version__, 'transformers', transformers.__version__, 'triton', triton.__version__)" | tee -a "$OUT/card.txt"
timeout 560 python3 -m pytest -q -p no:cacheprovider --timeout 300 \
  tests/gpu/test_cache_bounds.py tests/gpu/test_hf.py tests/gpu/test_inplace.py tests/gpu/test_cuda.py \
  tests/test_restart.py tests/test_torch_patches.py tests/test_size_plan.py tests/test_user_errors.py \
  2>&1 | tee "$OUT/gpu-tests.txt" | grep -v "^W1" | tail -60
