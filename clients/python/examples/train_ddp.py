#!/usr/bin/env python3
"""A data-parallel trainer over noised: torch.distributed ranks sharing one daemon through DataLoaders.

    python train_ddp.py --spawn-daemon .build/release/noised --world-size 2 --steps 200
    python train_ddp.py --world-size 2 --output ipc://… --feedback ipc://… [--input ipc://…]
    torchrun --nproc-per-node 2 train_ddp.py --output ipc://… --feedback ipc://…

Each rank reads `NoisedDataset` through `DataLoader(batch_size=None, num_workers=--workers)`: every
worker of every rank is one PULL peer of the daemon, which hands each batch to one of them, so no
sampler or sharding is needed and no batch reaches two ranks. A small velocity model (z_t, sigma) ->
eps - z_0 is wrapped in DistributedDataParallel (gloo, so it runs on CPU) and trained on the
importance-weighted loss. The step is the count of optimizer steps, the same on every rank; rank 0
reports it with every rank's per-sample (sigma, loss) through `report_step`, so the daemon's
curriculum (`steps.source: feedback`) and adaptive proposal follow the whole run. With
--resume-step every rank calls `Reporter.resume` (a collective) before training on from that step.

--spawn-daemon BIN starts BIN on a temporary config (include_clean, feedback, adaptive schedule) and
feeds it synthetic latents; against a running daemon give its output (with `output.include_clean:
true`) and feedback endpoints, and --input to feed it the same synthetic latents.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from noised_client import Reporter, weighted_loss
from noised_client.torch import NoisedDataset, report_step, to_device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_toy import feeding, positive, spawned_daemon  # noqa: E402  (the same daemon setup and feed)

COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=5)


class VelocityModel(torch.nn.Module):
    """v_hat = MLP([z_t, sigma]) per sample, over the flattened latent."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(dim + 1, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, dim))

    def forward(self, z_t: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return self.layers(torch.cat([z_t, sigma[:, None]], dim=1))


def train_rank(rank: int, world: int, args, init_method: str) -> None:
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT)
    try:
        torch.set_num_threads(1)  # ranks and their loader workers share the CPU
        torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
        model = DistributedDataParallel(VelocityModel(args.dim, args.hidden))
        optimizer = torch.optim.Adam(model.parameters(), lr=args.learning_rate)
        device = torch.device("cpu")
        dataset = NoisedDataset(args.output, timeout_ms=args.timeout_ms)  # created here, opened in each worker
        loader = DataLoader(dataset, batch_size=None, num_workers=args.workers, pin_memory=torch.cuda.is_available(),
                            persistent_workers=args.workers > 0)
        with Reporter(args.feedback) as reporter:
            first_step = 0
            if args.resume_step is not None:
                reporter.resume(args.resume_step)  # every rank: rank 0's generation is broadcast
                first_step = args.resume_step
            batches = iter(loader)
            received = 0
            for step in range(first_step, args.steps):
                batch = to_device(next(batches), device)
                received += 1
                if "z_0" not in batch:
                    raise SystemExit("the daemon sends no z_0: set output.include_clean: true")
                count = batch["sigma"].shape[0]
                z_t, eps, z_0 = (batch[name].float().reshape(count, -1) for name in ("z_t", "eps", "z_0"))
                if z_t.shape[1] != args.dim:
                    raise SystemExit(f"latents have {z_t.shape[1]} elements per sample, --dim is {args.dim}")
                sigma = batch["sigma"]
                per_sample = ((model(z_t, sigma) - (eps - z_0)) ** 2).mean(dim=1)
                weight = batch.get("weight", torch.ones_like(sigma))
                optimizer.zero_grad()
                weighted_loss(per_sample, weight).backward()  # DDP averages the gradients over ranks
                optimizer.step()
                # The global step: every rank has taken step + 1 optimizer steps, whatever its share of batches.
                report_step(reporter, step + 1, sigma, per_sample.detach())
                if (step + 1) % args.print_every == 0 or step + 1 == args.steps:
                    mean_loss = per_sample.detach().mean()
                    dist.all_reduce(mean_loss)
                    if rank == 0:
                        print(f"step {step + 1}: loss {float(mean_loss) / world:.4f} (daemon step {batch['step']}, "
                              f"seq {batch['seq']})", flush=True)
            counts = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
            dist.all_gather(counts, torch.tensor([received]))
            if rank == 0:
                print(f"final steps={args.steps} batches_per_rank={[int(c) for c in counts]}", flush=True)
            del batches, loader
    finally:
        dist.destroy_process_group()


def run(args) -> int:
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # started by torchrun
        train_rank(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), args, "env://")
        return 0
    with tempfile.TemporaryDirectory(prefix="noised-ddp-") as rendezvous:
        torch.multiprocessing.start_processes(train_rank, args=(args.world_size, args, f"file://{rendezvous}/init"),
                                              nprocs=args.world_size, join=True, start_method="spawn")
    return 0


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spawn-daemon", metavar="BIN", help="start this noised binary on a temporary config")
    parser.add_argument("--input", help="the daemon's input.acked_endpoint: feed it synthetic latents")
    parser.add_argument("--output", help="the daemon's output endpoint (output.include_clean: true)")
    parser.add_argument("--feedback", help="the daemon's feedback endpoint (feedback.pattern: pull)")
    parser.add_argument("--world-size", type=positive, default=2, help="ranks to spawn (ignored under torchrun)")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers per rank")
    parser.add_argument("--steps", type=positive, default=200)
    parser.add_argument("--resume-step", type=int, help="resume at this step: Reporter.resume on every rank")
    parser.add_argument("--batch", type=positive, default=32, help="samples per fed batch")
    parser.add_argument("--dim", type=positive, default=16, help="latent size per sample")
    parser.add_argument("--hidden", type=positive, default=64)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mix", type=float, default=0.5, help="schedule.adaptive.mix of a spawned daemon")
    parser.add_argument("--print-every", type=positive, default=50)
    parser.add_argument("--timeout-ms", type=positive, default=60_000,
                        help="fail if no batch comes in this time (a trainer can leave NoisedDataset's default: wait)")
    args = parser.parse_args(argv)
    args.feedback_pattern = "push"  # for train_toy's daemon config and feeder
    if args.spawn_daemon is None and (args.output is None or args.feedback is None):
        parser.error("give --output and --feedback of a running daemon, or --spawn-daemon BIN")
    if args.spawn_daemon is not None and (args.input or args.output or args.feedback):
        parser.error("--spawn-daemon chooses its own endpoints: drop --input, --output and --feedback")
    if args.spawn_daemon is not None and "RANK" in os.environ:
        parser.error("--spawn-daemon spawns its own ranks: run it without torchrun, with --world-size")
    if args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if args.resume_step is not None and not 0 <= args.resume_step < args.steps:
        parser.error(f"--resume-step must be in [0, --steps), got {args.resume_step}")
    return args


def main(argv=None) -> int:
    args = parse_arguments(argv)
    if args.spawn_daemon is None:
        # Under torchrun every rank runs this: one feeder is enough.
        with feeding(args.input if int(os.environ.get("RANK", "0")) == 0 else None, args):
            return run(args)
    with spawned_daemon(args.spawn_daemon, args) as (input_endpoint, output, feedback):
        args.output, args.feedback = output, feedback
        with feeding(input_endpoint, args):
            return run(args)


if __name__ == "__main__":
    sys.exit(main())
