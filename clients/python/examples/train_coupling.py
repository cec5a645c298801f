#!/usr/bin/env python3
"""Batch coupling in noised, end to end: the same model trained with `schedule.coupling` off and on.

    python train_coupling.py --spawn-daemon .build/release/noised
    python train_coupling.py --spawn-daemon .build/release/noised --methods none,assignment,knn

For each method the script starts the daemon on a fresh config that differs only in
`schedule.coupling.method`, feeds it the same synthetic latents (z_0 from a mixture of a few
Gaussians, [batch, dim], each sample with an explicit noise id so σ and the candidate noise streams
are the same in every run), and trains the same small torch MLP from the same initialisation for the
same steps on the rectified-flow objective: predict v = ε − z_0 from (z_t, σ), z_t = (1−σ) z_0 + σ ε.
Only which noise stream each sample gets differs: with coupling the daemon pairs the batch's z_0
with its ε by minimum total squared distance (minibatch OT, Immiscible Diffusion).

Printed per method:
  target var     the variance of v across the batch, per element, averaged over elements and batches
  |v|²/dim       E||ε − z_0||² / dim: the transport cost per element the trainer sees
  moved          the share of samples whose noise stream is not their own
  final loss     the mean training loss over the last --final-window steps
  1-step gap     E||x̂₁ − x̂₃₂||² / dim between one Euler step and 32 from the same ε: 0 for a straight flow
  mode dist      the mean distance of samples to the nearest mixture centre, after 1 and 32 steps
                 (the data's own is printed for scale)
  train s        seconds of the training loop; waited s: of which waiting for the daemon's batches

The training losses of the runs are each their own objective's: with coupling the targets have
less conditional variance, so the loss can go lower; the generated samples compare both on one scale.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noised_client import Consumer, Producer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_toy import running_daemon  # noqa: E402  (the same way of starting and stopping a daemon)

METHODS = ("none", "assignment", "sinkhorn", "knn")
EULER_STEPS = 32
EVALUATION_SAMPLES = 4096
ID_BITS = 56  # knn candidate c of stream n is n ^ (c << 56): the low bits name the sample's own stream


@dataclass
class Mixture:
    """z_0 ~ a mixture of `components` isotropic Gaussians with centres on a sphere of `radius`."""

    centres: np.ndarray
    std: float

    @classmethod
    def make(cls, components: int, dim: int, radius: float, std: float, seed: int) -> "Mixture":
        directions = np.random.default_rng(seed).standard_normal((components, dim))
        return cls(radius * directions / np.linalg.norm(directions, axis=1, keepdims=True), std)

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        which = rng.integers(len(self.centres), size=count)
        return (self.centres[which] + self.std * rng.standard_normal((count, self.centres.shape[1]))).astype(np.float32)

    def mode_distance(self, points: np.ndarray) -> float:
        """Mean Euclidean distance from each point to its nearest centre."""
        squared = ((points[:, None, :] - self.centres[None, :, :]) ** 2).sum(-1)
        return float(np.mean(np.sqrt(squared.min(1))))


@dataclass
class RunResult:
    method: str
    target_variance: float
    transport_cost: float
    moved: float
    final_loss: float
    one_step_gap: float
    mode_distance_1: float
    mode_distance_32: float
    seconds: float
    waited: float


class VelocityModel:
    """A small MLP v̂(z_t, σ), trained by Adam on the mean squared error; one CPU thread."""

    def __init__(self, dim: int, hidden: int, learning_rate: float, seed: int):
        import torch

        self.torch = torch
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim + 1, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, hidden), torch.nn.SiLU(),
            torch.nn.Linear(hidden, dim))
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=learning_rate)

    def predict(self, z_t, sigma):
        return self.net(self.torch.cat([z_t, sigma[:, None]], dim=1))

    def train_step(self, z_t: np.ndarray, sigma: np.ndarray, target: np.ndarray) -> float:
        torch = self.torch
        # Copies: received frames are read-only.
        z_t, sigma, target = (torch.from_numpy(np.array(value, np.float32)) for value in (z_t, sigma, target))
        loss = ((self.predict(z_t, sigma) - target) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def generate(self, eps: np.ndarray, steps: int) -> np.ndarray:
        """Euler from σ = 1 (noise) down to σ = 0 (data): z ← z − Δσ · v̂(z, σ)."""
        torch = self.torch
        with torch.no_grad():
            z = torch.from_numpy(np.array(eps, np.float32))
            for k in range(steps):
                sigma = torch.full((len(z),), 1.0 - k / steps)
                z = z - self.predict(z, sigma) / steps
        return z.numpy()


def feed_latents(endpoint: str, mixture: Mixture, batch: int, seed: int, stop: threading.Event) -> None:
    """Send batch k of mixture samples with noise ids k·B … (k+1)·B − 1 until stopped; every run
    gets the same batches with the same ids, so σ (drawn from a sample's own id) is the same too."""
    rng = np.random.default_rng(seed + 1)
    producer = Producer(endpoint, ack_timeout_ms=1000)
    try:
        for index in range(2**40):
            latents = mixture.sample(rng, batch)
            ids = np.arange(index * batch, (index + 1) * batch, dtype=np.uint64)
            while not stop.is_set():
                try:
                    producer.send({"latents": latents, "noise_id": ids}, timeout_ms=200)
                    break
                except TimeoutError:
                    continue  # the daemon is ahead of the trainer: try again unless stopping
            if stop.is_set():
                return
    finally:
        # The trainer stops reading first, so the last batches in flight are expected to be unanswered.
        producer.close(check=False)


@contextlib.contextmanager
def feeding(endpoint: str, mixture: Mixture, args):
    stop = threading.Event()
    thread = threading.Thread(target=feed_latents, args=(endpoint, mixture, args.batch, args.seed, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def daemon_config(directory: Path, method: str, args) -> dict:
    coupling = {"method": method}
    if method == "knn":
        coupling["candidates"] = args.candidates
    return {
        "seed": args.seed,
        "workers": 1,
        "state_dir": str(directory / "state"),
        "input": {"endpoint": f"ipc://{directory}/in.sock", "acked_endpoint": f"ipc://{directory}/acked.sock",
                  "bind": True, "tensor": "latents"},
        "output": {"endpoint": f"ipc://{directory}/out.sock", "bind": True, "high_water_mark": 4,
                   "include_clean": True, "dtype": "f32"},
        "shutdown": {"drain_seconds": 1},
        "metrics": {"listen": None},  # the default port may be another daemon's
        "schedule": {
            "sigma_min": 0.0,
            "sigma_max": 1.0,
            "curriculum": [{"at_step": 0, "distribution": "uniform"}],
            "coupling": coupling,
        },
    }


def train(method: str, output: str, mixture: Mixture, args) -> RunResult:
    started = time.monotonic()
    model = VelocityModel(args.dim, args.hidden, args.learning_rate, args.seed)
    losses, variances, costs, moved, waited = [], [], [], 0, 0.0
    with Consumer(output) as consumer:
        for step in range(args.steps):
            asked = time.monotonic()
            batch = consumer.recv(timeout_ms=args.timeout_ms)
            waited += time.monotonic() - asked
            if batch is None:
                raise RuntimeError(f"no batch from {output} within {args.timeout_ms} ms")
            z_t, eps, z_0 = (np.asarray(batch[name], np.float32).reshape(args.batch, args.dim)
                             for name in ("z_t", "eps", "z_0"))
            sigma = np.asarray(batch["sigma"], np.float32)
            ids = np.asarray(batch["noise_id"], np.uint64)
            own = np.arange(step * args.batch, (step + 1) * args.batch, dtype=np.uint64)
            # Each run must see the same batches in the same order: the streams' ids say which batch this is
            # (assignment permutes the batch's own streams, sinkhorn draws from them, knn keeps their low bits).
            streams = ids & np.uint64((1 << ID_BITS) - 1)
            if streams.min() < own[0] or streams.max() > own[-1]:
                raise RuntimeError(f"step {step}: streams {streams[:4]}…, expected those of {own[0]}…{own[-1]}")
            moved += int(np.sum(ids != own))
            target = eps - z_0
            variances.append(float(np.mean(np.var(target, axis=0))))
            costs.append(float(np.mean(target ** 2)))
            losses.append(model.train_step(z_t, sigma, target))
            if args.print_every and ((step + 1) % args.print_every == 0):
                window = losses[-args.print_every:]
                print(f"  {method} step {step + 1}: loss {np.mean(window):.4f}, target var {np.mean(variances[-args.print_every:]):.4f}",
                      flush=True)
    seconds = time.monotonic() - started
    evaluation = np.random.default_rng(args.seed + 2).standard_normal((EVALUATION_SAMPLES, args.dim)).astype(np.float32)
    one, many = model.generate(evaluation, 1), model.generate(evaluation, EULER_STEPS)
    return RunResult(method, float(np.mean(variances)), float(np.mean(costs)), moved / (args.steps * args.batch),
                     float(np.mean(losses[-args.final_window:])), float(np.mean((one - many) ** 2)),
                     mixture.mode_distance(one), mixture.mode_distance(many), seconds, waited)


def report(results: list[RunResult], mixture: Mixture, args) -> None:
    data = mixture.mode_distance(mixture.sample(np.random.default_rng(args.seed + 3), EVALUATION_SAMPLES))
    print(f"\n{args.steps} steps of batch {args.batch}, dim {args.dim}, {len(mixture.centres)} components; "
          f"final loss over the last {args.final_window} steps; mode dist of the data itself {data:.3f}")
    print(f"  {'method':<11} {'target var':>10} {'|v|²/dim':>9} {'moved':>6} {'final loss':>10} {'1-step gap':>10}"
          f" {'mode dist 1':>11} {'mode dist 32':>12} {'train s':>7} {'waited s':>8}")
    for r in results:
        print(f"  {r.method:<11} {r.target_variance:10.4f} {r.transport_cost:9.4f} {r.moved:6.3f} {r.final_loss:10.4f}"
              f" {r.one_step_gap:10.4f} {r.mode_distance_1:11.3f} {r.mode_distance_32:12.3f} {r.seconds:7.1f} {r.waited:8.1f}")
    baseline = results[0]
    for r in results[1:]:
        print(f"  {r.method} vs {baseline.method}: target var ×{r.target_variance / baseline.target_variance:.3f}, "
              f"final loss ×{r.final_loss / baseline.final_loss:.3f}, 1-step gap ×{r.one_step_gap / baseline.one_step_gap:.3f}")
    # One line per run for scripts and tests.
    for r in results:
        print(f"result method={r.method} target_variance={r.target_variance:.6g} transport_cost={r.transport_cost:.6g} "
              f"moved={r.moved:.6g} final_loss={r.final_loss:.6g} one_step_gap={r.one_step_gap:.6g} "
              f"mode_distance_1={r.mode_distance_1:.6g} mode_distance_32={r.mode_distance_32:.6g}", flush=True)


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def method_list(text: str) -> list[str]:
    methods = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(f"methods are a comma-separated list of {', '.join(METHODS)}, got {text!r}")
    return methods


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawn-daemon", metavar="BIN", required=True, help="the noised binary to start, once per method")
    parser.add_argument("--methods", type=method_list, default=["none", "assignment"],
                        help="schedule.coupling.method of each run, in order; the first is the baseline")
    parser.add_argument("--steps", type=positive, default=1000)
    parser.add_argument("--batch", type=positive, default=256, help="samples per batch")
    parser.add_argument("--dim", type=positive, default=2, help="latent size per sample")
    parser.add_argument("--components", type=positive, default=8, help="Gaussians in the data's mixture")
    parser.add_argument("--radius", type=float, default=3.0, help="distance of the mixture's centres from 0")
    parser.add_argument("--std", type=float, default=0.2, help="std of each mixture component")
    parser.add_argument("--candidates", type=positive, default=8, help="schedule.coupling.candidates for knn")
    parser.add_argument("--hidden", type=positive, default=128, help="width of the MLP")
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--final-window", type=positive, default=200, help="steps the final loss averages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--print-every", type=int, default=500, help="progress every this many steps (0: never)")
    parser.add_argument("--timeout-ms", type=positive, default=30_000, help="give up if no batch comes in this time")
    args = parser.parse_args(argv)
    if not (Path(args.spawn_daemon).is_file() and os.access(args.spawn_daemon, os.X_OK)):
        parser.error(f"--spawn-daemon: no executable at {args.spawn_daemon}")
    args.final_window = min(args.final_window, args.steps)
    try:
        import torch
    except ImportError:
        parser.error("this example needs torch")
    torch.set_num_threads(1)  # the daemon has the other CPU; one thread also keeps runs comparable
    return args


def main(argv=None) -> int:
    args = parse_arguments(argv)
    mixture = Mixture.make(args.components, args.dim, args.radius, args.std, args.seed)
    # Torch's first steps are slow; warm it up so the first run's time is comparable (the model is reseeded per run).
    VelocityModel(args.dim, args.hidden, args.learning_rate, args.seed).train_step(
        *(np.zeros(shape, np.float32) for shape in ((args.batch, args.dim), (args.batch,), (args.batch, args.dim))))
    results = []
    for method in args.methods:
        with running_daemon(args.spawn_daemon, lambda directory: daemon_config(directory, method, args), method) as config:
            input_endpoint, output = config["input"]["acked_endpoint"], config["output"]["endpoint"]
            with feeding(input_endpoint, mixture, args):
                results.append(train(method, output, mixture, args))
    report(results, mixture, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
