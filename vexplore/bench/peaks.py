"""A GPU's limits for a profile's ``limit_share``: peak memory bandwidth and peak dense FLOP/s.

- Bandwidth: measured once per device, a large device-to-device copy (read + write counted), the
  best of a few; cached in the vexplore cache dir (``peaks.json``) keyed by the device's name.
- Dense FLOP/s per dtype: torch's own device table where it has the card and can give dense
  numbers (engine/_torch_compat.datasheet_dense_tflops), else a measured matmul (cached the same way).

The CPU has no limit here: ``device_peaks`` returns None and rows keep ``limit_share`` None.
"""
from __future__ import annotations

import json
import logging
import os
import pathlib
from dataclasses import dataclass, field

import torch

from ..engine import _torch_compat as tc

log = logging.getLogger(__name__)

COPY_BYTES = 1 << 30          # 1 GiB: far past every cache
MATMUL_N = 8192
REPEATS = 5


@dataclass(frozen=True)
class Peaks:
    device: str
    bandwidth_gbs: float
    tflops: dict[str, float] = field(default_factory=dict)   # str(dtype) -> dense TFLOP/s

    def roofline_s(self, nbytes: int | None, flops: int | None, dtype: str | None) -> float | None:
        """The least time the work can take on this device: max(bytes / bandwidth, flops / peak)."""
        times = []
        if nbytes:
            times.append(nbytes / (self.bandwidth_gbs * 1e9))
        peak = self.tflops.get(dtype or "")
        if flops and peak:
            times.append(flops / (peak * 1e12))
        return max(times) if times else None


def device_peaks(device: torch.device, cache_dir: str, dtypes: set[str]) -> Peaks | None:
    """The peaks of ``device`` for ``dtypes`` (names as ``str(torch.float16)``), measured or read from
    ``cache_dir/peaks.json``; None on a device that is not CUDA."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(device)
    path = pathlib.Path(cache_dir).expanduser() / "peaks.json"
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    entry = known.get(name) if isinstance(known.get(name), dict) else {}
    changed = False
    if not isinstance(entry.get("bandwidth_gbs"), (int, float)):
        entry["bandwidth_gbs"], changed = copy_bandwidth_gbs(device), True
    tflops = entry.setdefault("tflops", {})
    for dt in sorted(dtypes - set(tflops)):
        dtype = getattr(torch, dt.removeprefix("torch."), None)
        if isinstance(dtype, torch.dtype) and dtype.is_floating_point:
            tflops[dt] = tc.datasheet_dense_tflops(name, dtype) or matmul_tflops(device, dtype)
            changed = True
    if changed:
        known[name] = entry
        _write(path, known)
    return Peaks(name, float(entry["bandwidth_gbs"]), {k: float(v) for k, v in tflops.items() if v})


def _best_s(fn: object, device: torch.device) -> float:
    """The fastest of REPEATS runs of ``fn`` (CUDA events), after one warm run."""
    fn()   # type: ignore[operator]
    best = float("inf")
    for _ in range(REPEATS):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()   # type: ignore[operator]
        end.record()
        torch.cuda.synchronize(device)
        best = min(best, start.elapsed_time(end) / 1e3)
    return best


def copy_bandwidth_gbs(device: torch.device) -> float:
    """Device-to-device copy bandwidth: 2 x COPY_BYTES (read and write) over the best copy time."""
    src = torch.empty(COPY_BYTES, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    seconds = _best_s(lambda: dst.copy_(src), device)
    del src, dst
    return 2 * COPY_BYTES / seconds / 1e9


def matmul_tflops(device: torch.device, dtype: torch.dtype) -> float:
    """Dense FLOP/s of an MATMUL_N-square matmul in ``dtype``, in TFLOP/s."""
    a = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
    b = torch.randn(MATMUL_N, MATMUL_N, device=device, dtype=dtype)
    seconds = _best_s(lambda: a @ b, device)
    return 2 * MATMUL_N ** 3 / seconds / 1e12


def _write(path: pathlib.Path, data: dict) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:   # the peaks are measured again next time; the profile does not fail for it
        log.warning("vexplore: could not cache the device peaks in %s", path, exc_info=True)
