#!/usr/bin/env python3
"""Minimal trainer-side loop: pull noised batches from the daemon and form the flow-matching loss.

    python examples/consume.py --endpoint ipc:///run/noised/out.sock --batches 10

The daemon's config should set `output.include_clean: true` so the velocity target eps - z_0 can be
formed; the "model" here is a stand-in that predicts zeros.
"""

import argparse
import sys

import numpy as np

from noised_client import Consumer, reference


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="the daemon's output endpoint, e.g. ipc:///run/noised/out.sock")
    parser.add_argument("--bind", action="store_true", help="bind instead of connecting")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--timeout-ms", type=int, default=30_000, help="give up if no batch arrives in this time")
    args = parser.parse_args()

    with Consumer(args.endpoint, bind=args.bind) as consumer:
        for _ in range(args.batches):
            batch = consumer.recv(timeout_ms=args.timeout_ms)
            if batch is None:
                print(f"no batch within {args.timeout_ms} ms: is noised running and fed?", file=sys.stderr)
                return 1
            z_t, eps, sigma = (batch[name].astype(np.float32) for name in ("z_t", "eps", "sigma"))
            prediction = np.zeros_like(z_t)  # model(z_t, sigma) in a real trainer
            line = f"seq={batch.seq} step={batch.step} batch={len(sigma)} sigma_mean={sigma.mean():.3f}"
            if "z_0" in batch:
                target = eps - batch["z_0"].astype(np.float32)  # rectified-flow velocity
                line += f" loss={np.mean((prediction - target) ** 2):.4f}"
            # Any sample's eps can be regenerated from (seed, noise_id): useful for audits and replays.
            first = reference.noise(batch.seed, int(batch["noise_id"][0]), eps[0].size).reshape(eps[0].shape)
            line += f" eps_max_abs_diff={np.max(np.abs(first - eps[0])):.2e}"
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
