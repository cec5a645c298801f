"""One rank of the torch.distributed test: a NoisedDataset through a DataLoader, an all_reduce per step,
and rank 0's step reports. Spawned by torch.multiprocessing, so it lives in an importable module.

Ranks do not get equal shares of the daemon's batches, so each step also all_reduces whether the rank
had a batch, and the loop ends when no rank has one: ranks run the same number of collectives.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from noised_client import Reporter
from noised_client.torch import NoisedDataset, report_step, resume_step

COLLECTIVE_TIMEOUT = datetime.timedelta(seconds=120)


def run_rank(rank: int, world: int, config: dict) -> None:
    dist.init_process_group("gloo", init_method=config["rendezvous"], rank=rank, world_size=world,
                            timeout=COLLECTIVE_TIMEOUT)
    try:
        record = train(rank, config)
        Path(config["results"], f"rank{rank}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


def train(rank: int, config: dict) -> dict:
    dataset = NoisedDataset(config["output"], timeout_ms=config["idle_end_ms"], on_timeout="stop")
    loader = DataLoader(dataset, batch_size=None, num_workers=config["workers"], pin_memory=True,
                        timeout=config["loader_timeout_s"])
    record = {"seqs": [], "indices": [], "local": [], "reduced": [], "sigma": [], "steps": 0}
    batches = iter(loader)
    with Reporter(config["feedback"]) as reporter:
        # A resume from step 0 with only rank 0's reporter: later reports carry its generation.
        record["generation"] = resume_step(reporter if rank == 0 else None, 0, generation=config["generation"] + rank,
                                           timeout_ms=30_000)
        step, exhausted = 0, False
        while True:
            batch = None if exhausted else next(batches, None)
            exhausted = batch is None
            if batch is None:
                local, sigma = 0.0, torch.empty(0)
                per_sample = torch.empty(0)
            else:
                per_sample = batch["z_t"].float().pow(2).mean(dim=1)
                local, sigma = float(per_sample.sum()), batch["sigma"]
            totals = torch.tensor([local, 0.0 if batch is None else 1.0], dtype=torch.float64)
            dist.all_reduce(totals)
            if totals[1] == 0:
                break
            if batch is not None:
                record["seqs"].append(batch["seq"])
                record["indices"].append(int(batch["metadata"]["index"]))
            record["local"].append(local)
            record["reduced"].append(float(totals[0]))
            record["sigma"].append(sigma.tolist())
            report_step(reporter if rank == 0 else None, step, sigma, per_sample, timeout_ms=30_000)
            step += 1
        record["steps"] = step
        # Ranks that disagree on the step: every rank must raise, none may hang in the collective.
        try:
            report_step(reporter, rank, torch.zeros(1), torch.zeros(1))
            record["mismatch_error"] = None
        except ValueError as error:
            record["mismatch_error"] = str(error)
    del batches, loader
    return record
