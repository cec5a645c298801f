#!/usr/bin/env python3
"""A toy flow-matching trainer that closes the loop with noised: losses in, an adapted sigma out.

    python train_toy.py --spawn-daemon .build/release/noised --steps 300

It learns the velocity v = eps - z_0 on synthetic latents z_0 ~ N(0, I) from (z_t, sigma) with a tiny
model: one gain per sigma bin, v_hat = a_k * z_t, trained by SGD on the importance-weighted loss.
The model is deliberately bad in one sigma band (--hard-band): there its prediction carries extra
noise, a stand-in for a model without the capacity for those noise levels. Every step it reports
each sample's (sigma, loss) to the daemon; with `schedule.adaptive` the daemon then draws sigma
more often where the loss is high and sends `weight` = p(sigma)/q(sigma) so the weighted loss still
estimates the curriculum's objective. Every --print-every steps the trainer prints, per sigma band,
the proposal's mass (the share of recent samples in the band), the mass the weights give back
(mean of weight over the band's samples times their share: the curriculum's mass), mean weight
and mean loss. The proposal's mass moves toward the hard band.

Against a running daemon: --output (its output, with `output.include_clean: true`), --feedback (its
feedback endpoint) and, to feed synthetic latents yourself, --input. --spawn-daemon BIN writes a
config to a temporary directory, starts BIN with it, feeds it and stops it at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from noised_client import Consumer, Producer, Reporter, weighted_loss

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0
MODEL_BINS = 10


class NumpyModel:
    """One gain per sigma bin; the gradient of the weighted mean squared error, by hand."""

    def __init__(self, hard_band: tuple[float, float], handicap: float, learning_rate: float, seed: int):
        self.gains = np.zeros(MODEL_BINS)
        self.hard_band, self.handicap, self.learning_rate = hard_band, handicap, learning_rate
        self.rng = np.random.default_rng(seed)

    def train_step(self, z_t, sigma, target, weight) -> np.ndarray:
        """Predict, take one SGD step on mean(weight * loss), and return the per-sample losses."""
        bins = np.minimum((sigma * MODEL_BINS).astype(np.int64), MODEL_BINS - 1)
        gain = self.gains[bins][:, None]
        prediction = gain * z_t + self.handicap_noise(sigma, z_t.shape)
        error = prediction - target
        loss = np.mean(error ** 2, axis=1)
        # d/da_k of mean_b(w_b * mean_d(error²)) = sum over the bin's samples of w_b * 2 mean_d(error·z_t) / B
        per_sample = weight * 2 * np.mean(error * z_t, axis=1) / len(sigma)
        self.gains -= self.learning_rate * np.bincount(bins, per_sample, minlength=MODEL_BINS)
        return loss

    def handicap_noise(self, sigma, shape):
        low, high = self.hard_band
        in_band = ((sigma >= low) & (sigma < high))[:, None]
        return in_band * self.handicap * self.rng.standard_normal(shape)


class TorchModel:
    """The same model in torch: autograd on `weighted_loss`, torch.optim.SGD."""

    def __init__(self, hard_band: tuple[float, float], handicap: float, learning_rate: float, seed: int):
        import torch

        self.torch = torch
        self.gains = torch.zeros(MODEL_BINS, requires_grad=True)
        self.optimizer = torch.optim.SGD([self.gains], lr=learning_rate)
        self.hard_band, self.handicap = hard_band, handicap
        self.generator = torch.Generator().manual_seed(seed)

    def train_step(self, z_t, sigma, target, weight) -> np.ndarray:
        torch = self.torch
        # Writable copies: received frames are read-only.
        z_t, sigma, target = (torch.from_numpy(np.array(value)) for value in (z_t, sigma, target))
        bins = torch.clamp((sigma * MODEL_BINS).long(), max=MODEL_BINS - 1)
        low, high = self.hard_band
        in_band = ((sigma >= low) & (sigma < high)).float()[:, None]
        noise = torch.randn(z_t.shape, generator=self.generator)
        prediction = self.gains[bins][:, None] * z_t + in_band * self.handicap * noise
        loss = ((prediction - target) ** 2).mean(dim=1)
        self.optimizer.zero_grad()
        weighted_loss(loss, weight).backward()
        self.optimizer.step()
        return loss.detach().numpy()


class Window:
    """The samples since the last printout: sigma, weight and loss, summarised per sigma band."""

    def __init__(self, bands: int, hard_band: tuple[float, float]):
        self.edges = np.linspace(0.0, 1.0, bands + 1)
        self.hard_band = hard_band
        self.clear()

    def clear(self) -> None:
        self.sigma, self.weight, self.loss = [], [], []

    def add(self, sigma, weight, loss) -> None:
        self.sigma.append(sigma)
        self.weight.append(weight)
        self.loss.append(loss)

    def arrays(self):
        return (np.concatenate(self.sigma).astype(np.float64), np.concatenate(self.weight).astype(np.float64),
                np.concatenate(self.loss).astype(np.float64))

    def band_masses(self, low: float, high: float) -> tuple[float, float]:
        """(proposal mass, curriculum mass) of [low, high): the share of samples there, and
        mean(weight * in_band), which estimates the curriculum's mass since E_q[w 1_A] = p(A)."""
        sigma, weight, _ = self.arrays()
        in_band = (sigma >= low) & (sigma < high)
        return float(np.mean(in_band)), float(np.mean(weight * in_band))

    def table(self) -> str:
        sigma, weight, loss = self.arrays()
        lines = ["    sigma band   proposal  curriculum  weight   loss"]
        for low, high in zip(self.edges[:-1], self.edges[1:]):
            in_band = (sigma >= low) & (sigma < (high if high < 1 else np.inf))
            proposal, curriculum = np.mean(in_band), np.mean(weight * in_band)
            mean_weight = np.mean(weight[in_band]) if in_band.any() else float("nan")
            mean_loss = np.mean(loss[in_band]) if in_band.any() else float("nan")
            overlap = min(high, self.hard_band[1]) - max(low, self.hard_band[0])
            hard = " <- hard" if overlap > 1e-9 else ""
            bar = "#" * int(round(proposal * 100))
            lines.append(f"    [{low:.2f},{high:.2f})  {proposal:8.3f}  {curriculum:10.3f}  {mean_weight:6.3f}"
                         f"  {mean_loss:5.2f}  {bar}{hard}")
        return "\n".join(lines)


def train(args, output: str, feedback: str) -> int:
    hard_band = args.hard_band
    model_type = TorchModel if args.backend == "torch" else NumpyModel
    model = model_type(hard_band, args.handicap, args.learning_rate, args.seed)
    window = Window(args.bands, hard_band)
    with Consumer(output) as consumer, Reporter(feedback, bind=args.feedback_pattern == "pub",
                                                pattern=args.feedback_pattern) as reporter:
        for step in range(args.steps):
            batch = consumer.recv(timeout_ms=args.timeout_ms)
            if batch is None:
                print(f"no batch from {output} within {args.timeout_ms} ms: is noised running and fed?",
                      file=sys.stderr)
                return 1
            if "z_0" not in batch:
                print("the daemon sends no z_0: set output.include_clean: true", file=sys.stderr)
                return 1
            z_t, eps, z_0 = (np.asarray(batch[name], np.float32).reshape(len(batch["sigma"]), -1)
                             for name in ("z_t", "eps", "z_0"))
            sigma = np.asarray(batch["sigma"], np.float32)
            weight = np.asarray(batch["weight"], np.float32) if "weight" in batch else np.ones_like(sigma)
            loss = model.train_step(z_t, sigma, eps - z_0, weight)
            # The raw per-sample losses: the daemon adapts to them; weighting is the trainer's business.
            reporter.report(step, sigma, loss, timeout_ms=args.timeout_ms)
            window.add(sigma, weight, loss)
            if (step + 1) % args.print_every == 0 or step + 1 == args.steps:
                _, weights, losses = window.arrays()
                print(f"step {step + 1} (daemon step {batch.step}): loss {np.mean(losses):.3f}, "
                      f"weighted loss {weighted_loss(losses, weights):.3f}, mean weight {np.mean(weights):.3f}")
                print(window.table(), flush=True)
                if step + 1 < args.steps:
                    window.clear()
    proposal, curriculum = window.band_masses(*hard_band)
    print(f"final proposal: hard band [{hard_band[0]}, {hard_band[1]}) mass {proposal:.3f}, "
          f"curriculum mass {curriculum:.3f}")
    print(f"final hard_band_mass={proposal:.4f} curriculum_band_mass={curriculum:.4f}", flush=True)
    return 0


def feed_latents(endpoint: str, batch: int, dim: int, seed: int, stop: threading.Event) -> None:
    """Send synthetic latents z_0 ~ N(0, I), [batch, dim] F32, until stopped."""
    rng = np.random.default_rng(seed + 1)
    producer = Producer(endpoint, ack_timeout_ms=1000)
    try:
        while not stop.is_set():
            latents = rng.standard_normal((batch, dim)).astype(np.float32)
            while not stop.is_set():
                try:
                    producer.send({"latents": latents}, timeout_ms=200)
                    break
                except TimeoutError:
                    continue  # the daemon is ahead of the trainer: try again unless stopping
    finally:
        # The trainer stops reading first, so the last batches in flight are expected to be unanswered.
        producer.close(check=False)


@contextlib.contextmanager
def feeding(endpoint: str | None, args):
    if endpoint is None:
        yield
        return
    stop = threading.Event()
    thread = threading.Thread(target=feed_latents, args=(endpoint, args.batch, args.dim, args.seed, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def daemon_config(directory: Path, args) -> dict:
    return {
        "seed": args.seed,
        "workers": 1,
        "state_dir": str(directory / "state"),
        "input": {"endpoint": f"ipc://{directory}/in.sock", "acked_endpoint": f"ipc://{directory}/acked.sock",
                  "bind": True, "tensor": "latents"},
        "output": {"endpoint": f"ipc://{directory}/out.sock", "bind": True, "high_water_mark": 2,
                   "include_clean": True},
        # A publishing trainer binds and the daemon subscribes; a pushing one connects to a pulling daemon.
        "feedback": {"endpoint": f"ipc://{directory}/feedback.sock", "bind": args.feedback_pattern == "push",
                     "pattern": "pull" if args.feedback_pattern == "push" else "sub"},
        "steps": {"batches_per_step": 1, "source": "feedback"},
        "shutdown": {"drain_seconds": 1},
        # No metrics listener: the default port may be another daemon's on this host.
        "metrics": {"listen": None},
        "schedule": {
            "sigma_min": 0.0,
            "sigma_max": 1.0,
            "curriculum": [{"at_step": 0, "distribution": "uniform"}],
            "adaptive": {"enabled": True, "bins": 20, "history": 10, "mix": args.mix, "uniform_floor": 0.01},
        },
    }


@contextlib.contextmanager
def running_daemon(binary: str, make_config, label: str = ""):
    """Start `binary run` on make_config(directory) in a fresh temporary directory; yield the
    config once the daemon is ready; stop it (SIGTERM, bounded) at the end. Other examples use it."""
    with tempfile.TemporaryDirectory(prefix="noised-example-") as temporary:
        directory = Path(temporary)
        config = make_config(directory)
        config_path = directory / "noised.yaml"
        config_path.write_text(json.dumps(config, indent=2))  # JSON is YAML
        process = subprocess.Popen([binary, "run", "--config", str(config_path)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        ready = threading.Event()

        def read_log():
            for line in process.stderr:
                lines.append(line.rstrip("\n"))
                if re.search(r'\bmsg="?ready\b', line):
                    ready.set()

        reader = threading.Thread(target=read_log, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + READY_TIMEOUT_S
            while not ready.wait(0.1):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"noised did not get ready ({'exited' if process.poll() is not None else 'timed out'}):\n"
                                       + "\n".join(lines[-20:]))
            yield config
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            reader.join(timeout=5)
            stopped = [line for line in lines if re.search(r'\bmsg="?stopped\b', line)]
            print(f"{'  ' if label else ''}noised{f' ({label})' if label else ''} exited with {process.returncode}: "
                  f"{stopped[-1] if stopped else 'no stop line'}")


@contextlib.contextmanager
def spawned_daemon(binary: str, args):
    """The toy's daemon (`daemon_config`); yield (input, output, feedback)."""
    with running_daemon(binary, lambda directory: daemon_config(directory, args)) as config:
        yield (config["input"]["acked_endpoint"], config["output"]["endpoint"], config["feedback"]["endpoint"])


def band(text: str) -> tuple[float, float]:
    low, high = (float(part) for part in text.split(","))
    if not 0 <= low < high <= 1:
        raise argparse.ArgumentTypeError(f"a band is LOW,HIGH with 0 <= LOW < HIGH <= 1, got {text!r}")
    return low, high


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawn-daemon", metavar="BIN", help="start this noised binary on a temporary config")
    parser.add_argument("--input", help="the daemon's input.acked_endpoint: feed it synthetic latents")
    parser.add_argument("--output", help="the daemon's output endpoint (output.include_clean: true)")
    parser.add_argument("--feedback", help="the daemon's feedback endpoint")
    parser.add_argument("--feedback-pattern", choices=["push", "pub"], default="push",
                        help="push connects to a pulling daemon; pub binds for subscribing daemons")
    parser.add_argument("--steps", type=positive, default=300)
    parser.add_argument("--batch", type=positive, default=64, help="samples per fed batch")
    parser.add_argument("--dim", type=positive, default=16, help="latent size per sample")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hard-band", type=band, default=(0.6, 0.8), help="LOW,HIGH: where the model is bad")
    parser.add_argument("--handicap", type=float, default=2.0, help="std of the model's extra error in the hard band")
    parser.add_argument("--learning-rate", type=float, default=1.0)
    parser.add_argument("--mix", type=float, default=0.5, help="schedule.adaptive.mix of a spawned daemon")
    parser.add_argument("--bands", type=positive, default=5, help="sigma bands in the printout")
    parser.add_argument("--print-every", type=positive, default=50)
    parser.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    parser.add_argument("--timeout-ms", type=positive, default=30_000, help="give up if no batch comes in this time")
    args = parser.parse_args(argv)
    if args.spawn_daemon is None and (args.output is None or args.feedback is None):
        parser.error("give --output and --feedback of a running daemon, or --spawn-daemon BIN")
    if args.spawn_daemon is not None and not (Path(args.spawn_daemon).is_file() and os.access(args.spawn_daemon, os.X_OK)):
        parser.error(f"--spawn-daemon: no executable at {args.spawn_daemon}")
    if args.spawn_daemon is not None and (args.input or args.output or args.feedback):
        parser.error("--spawn-daemon chooses its own endpoints: drop --input, --output and --feedback")
    if args.backend == "torch":
        try:
            import torch  # noqa: F401
        except ImportError:
            parser.error("--backend torch needs torch installed")
    return args


def main(argv=None) -> int:
    args = parse_arguments(argv)
    if args.spawn_daemon is None:
        with feeding(args.input, args):
            return train(args, args.output, args.feedback)
    with spawned_daemon(args.spawn_daemon, args) as (input_endpoint, output, feedback):
        with feeding(input_endpoint, args):
            return train(args, output, feedback)


if __name__ == "__main__":
    sys.exit(main())
