#!/usr/bin/env python3
"""numpy's noising of the tensor `noised bench` noises, on one thread, for the kernel's comparison.

Per dtype: eps = standard_normal (PCG64, float32), z_t = (1 - s) * z0 + s * eps with one s per
sample, into preallocated arrays. f16 and bf16 are cast to float32 and back (bf16 through
ml_dtypes, skipped when it is missing). Prints JSON: {"f32": Gelem/s, ...} (medians over repeats).
"""
import argparse
import json
import os
import sys
import time

# One thread: numpy's elementwise work is single-threaded anyway; this keeps a BLAS out of it too.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

import numpy as np


def element_type(name):
    if name == "f32":
        return np.float32
    if name == "f16":
        return np.float16
    if name == "bf16":
        try:
            import ml_dtypes
        except ImportError:
            return None
        return ml_dtypes.bfloat16
    raise SystemExit(f"bench-numpy: unknown dtype {name!r} (f32, f16 or bf16)")


def noiser(shape, dtype, seed):
    """A function that noises one batch, and its element count."""
    rng = np.random.default_rng(seed)
    samples = shape[0]
    z0 = (np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) % 4093 / 1024 - 2).astype(dtype)
    s = (np.arange(1, samples + 1, dtype=np.float32) / (samples + 2)).reshape((samples,) + (1,) * (len(shape) - 1))
    eps32 = np.empty(shape, np.float32)
    zt32 = np.empty(shape, np.float32)
    scaled = np.empty(shape, np.float32)
    native = dtype == np.float32
    eps_out = eps32 if native else np.empty(shape, dtype)
    zt_out = zt32 if native else np.empty(shape, dtype)

    def run():
        rng.standard_normal(dtype=np.float32, out=eps32)
        np.multiply(z0, 1 - s, out=zt32, casting="unsafe")
        np.multiply(eps32, s, out=scaled)
        np.add(zt32, scaled, out=zt32)
        if not native:
            eps_out[...] = eps32
            zt_out[...] = zt32

    return run, z0.size


def median_rate(run, elements, seconds):
    run()  # warm-up: page faults and caches
    rates = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(rates) < 3:
        start = time.perf_counter()
        run()
        rates.append(elements / (time.perf_counter() - start) / 1e9)
    rates.sort()
    return rates[len(rates) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--shape", default="2,12,28,60,106", help="batch shape, batch first")
    parser.add_argument("--dtypes", default="f32,bf16,f16", help="comma-separated: f32, f16, bf16")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per dtype")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        shape = tuple(int(d) for d in args.shape.split(","))
    except ValueError:
        raise SystemExit(f"bench-numpy: --shape must be integers separated by commas, got {args.shape!r}")
    if not shape or any(d <= 0 for d in shape):
        raise SystemExit(f"bench-numpy: --shape must be positive, got {args.shape!r}")
    if args.seconds <= 0:
        raise SystemExit(f"bench-numpy: --seconds must be positive, got {args.seconds}")
    rates = {}
    for name in args.dtypes.split(","):
        dtype = element_type(name)
        if dtype is None:
            print(f"bench-numpy: {name} skipped (ml_dtypes is not installed)", file=sys.stderr)
            continue
        run, elements = noiser(shape, dtype, args.seed)
        rates[name] = median_rate(run, elements, args.seconds)
    json.dump(rates, sys.stdout)
    print()


if __name__ == "__main__":
    main()
