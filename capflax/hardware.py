"""Peak dense bf16 FLOP/s per device, for model FLOPs utilization (MFU) in the logs.

Vendor figures for one JAX device (a TPU v2/v3 chip is two devices). Unknown kinds (CPUs,
other GPUs) get no MFU unless `train.peak_flops_per_device` gives the figure.
"""

import jax

PEAK_BF16_FLOPS = {  # device_kind prefix -> FLOP/s per device
    "TPU v2": 22.5e12,
    "TPU v3": 61.5e12,
    "TPU v4": 275e12,
    "TPU v5 lite": 197e12,
    "TPU v5p": 459e12,
    "TPU v5": 459e12,
    "TPU v6 lite": 918e12,
    "NVIDIA H100": 989e12,
    "NVIDIA H200": 989e12,
    "NVIDIA A100": 312e12,
}


def peak_flops(override: float = 0.0, device=None) -> float | None:
  """FLOP/s of one device: `override` when > 0, else the table's, else None."""
  if override:
    return float(override)
  kind = (device or jax.devices()[0]).device_kind
  for prefix, flops in PEAK_BF16_FLOPS.items():  # Longer prefixes come first where it matters.
    if kind.startswith(prefix):
      return flops
  return None
