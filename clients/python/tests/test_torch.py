"""noised_client.torch against the real daemon: NoisedDataset through DataLoader workers, persistent
workers over epochs, two torch.distributed ranks sharing one daemon, Consumer(as_torch=True).

Peers are counted on the daemon's side: every connection it accepted on its output socket is a
connected unix socket bound to the output path in /proc/net/unix (the connecting side is unnamed).
A dataset that opened its socket in the main process, or never closed one, leaves a peer behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.multiprocessing  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from noised_client import Consumer, Producer, decode, encode  # noqa: E402
from noised_client.feedback import Reporter  # noqa: E402
from noised_client.torch import NoisedDataset, report_step, to_device, to_torch  # noqa: E402
from tests.ddp_rank import run_rank  # noqa: E402
from tests.exchange import receive  # noqa: E402
from tests.harness import socket_dir  # noqa: E402

# A worker ends its iteration after this long without a batch (on_timeout="stop"): the input is done.
IDLE_END_MS = 8000
LOADER_TIMEOUT_S = 90  # DataLoader(timeout=): the longest the main process waits for a worker's batch
WAIT_S = 60.0  # for peers to connect or go, and for threads and ranks to finish
FEED_TIMEOUT_MS = 60_000
SAMPLE_SHAPE = (4, 64)
EXAMPLE_TIMEOUT_S = 300


def output_peers(noised) -> set[int]:
    """Inodes of the connections the daemon accepted on its output socket."""
    path = noised.output_endpoint.removeprefix("ipc://")
    inodes = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        # Num RefCount Protocol Flags Type St Inode Path; St 03 is connected (the listener is 01).
        if len(fields) == 8 and fields[7] == path and fields[5] == "03":
            inodes.add(int(fields[6]))
    return inodes


def wait_for_peers(noised, count: int, what: str) -> set[int]:
    deadline = time.monotonic() + WAIT_S
    while True:
        peers = output_peers(noised)
        if len(peers) == count:
            return peers
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: {len(peers)} peers on the daemon's output after {WAIT_S} s, expected {count}")
        time.sleep(0.05)


def latents(index: int) -> dict[str, np.ndarray]:
    return {"latents": np.random.default_rng(index).standard_normal(SAMPLE_SHAPE).astype(np.float32)}


class Feeder(threading.Thread):
    """Sends `count` batches to the daemon's acknowledged input, each with metadata index=i."""

    def __init__(self, noised, count: int, first_index: int = 0):
        super().__init__(daemon=True)
        self.endpoint, self.count, self.first_index = noised.acked_endpoint, count, first_index
        self.report = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with Producer(self.endpoint, ack_timeout_ms=FEED_TIMEOUT_MS) as producer:
                for index in range(self.first_index, self.first_index + self.count):
                    producer.send(latents(index), {"index": str(index)}, timeout_ms=FEED_TIMEOUT_MS)
            self.report = producer.report
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            self.error = error

    def finish(self) -> None:
        """Wait for every batch to be acknowledged; fail if one was not."""
        self.join(timeout=WAIT_S)
        if self.is_alive():
            pytest.fail(f"the feeder did not finish sending {self.count} batches within {WAIT_S} s")
        if self.error is not None:
            raise self.error
        assert self.report.acknowledged == self.count, str(self.report)


def assert_each_batch_once(samples: list[dict], count: int) -> None:
    seqs = sorted(sample["seq"] for sample in samples)
    indices = sorted(int(sample["metadata"]["index"]) for sample in samples)
    # A fresh daemon numbers its outputs from 0; the producer's index passes through unchanged.
    assert seqs == list(range(count)), f"seqs missing {sorted(set(range(count)) - set(seqs))[:10]}, " \
                                       f"{len(seqs) - len(set(seqs))} repeated, of {len(seqs)} received"
    assert indices == list(range(count))


def test_two_workers_deliver_every_batch_once_and_leave_no_socket_open(daemon):
    noised = daemon()
    count = 200
    dataset = NoisedDataset(noised.output_endpoint, timeout_ms=IDLE_END_MS, on_timeout="stop")
    loader = DataLoader(dataset, batch_size=None, num_workers=2, pin_memory=True, timeout=LOADER_TIMEOUT_S)
    batches = iter(loader)  # forks the workers before the feeder thread starts
    feeder = Feeder(noised, count)
    feeder.start()
    samples, most_peers = [], 0
    for sample in batches:  # ends when both workers found the input done
        samples.append(sample)
        most_peers = max(most_peers, len(output_peers(noised)))
    feeder.finish()

    assert len(samples) == count
    assert_each_batch_once(samples, count)
    assert most_peers == 2, "each worker is one PULL peer, and nothing else connects"
    first = samples[0]
    assert first["z_t"].dtype == torch.float32 and tuple(first["z_t"].shape) == SAMPLE_SHAPE
    assert first["sigma"].dtype == torch.float32 and first["noise_id"].dtype == torch.uint64
    assert isinstance(first["step"], int) and first["metadata"]["noised.protocol"] == "1"
    z_0 = latents(int(first["metadata"]["index"]))["latents"]
    sigma = first["sigma"].numpy()[:, None]
    np.testing.assert_allclose(first["z_t"].numpy(), (1 - sigma) * z_0 + sigma * first["eps"].numpy(), atol=1e-5)

    # The workers closed their sockets when their iteration ended; the dataset is still alive here.
    wait_for_peers(noised, 0, "after the epoch")
    del batches, loader
    assert output_peers(noised) == set()


def test_persistent_workers_keep_their_sockets_across_epochs_and_lose_no_batch(daemon):
    noised = daemon()
    count, per_epoch = 100, 40  # 20 per worker per epoch; the rest is drained by later epochs
    dataset = NoisedDataset(noised.output_endpoint, max_batches=per_epoch, timeout_ms=IDLE_END_MS,
                            on_timeout="stop")
    loader = DataLoader(dataset, batch_size=None, num_workers=2, persistent_workers=True, timeout=LOADER_TIMEOUT_S)
    batches = iter(loader)
    # Both workers connected before the first batch, so the daemon shares batches out from the start.
    first_peers = wait_for_peers(noised, 2, "persistent workers")
    feeder = Feeder(noised, count)
    feeder.start()
    epochs = [list(batches)]
    assert output_peers(noised) == first_peers, "an epoch ended at max_batches keeps the workers' sockets"
    epochs.append(list(loader))
    assert output_peers(noised) == first_peers
    feeder.finish()
    # Drain: an epoch ends early for a worker with nothing left; an empty one means none has any.
    while epochs[-1] and len(epochs) < 8:
        epochs.append(list(loader))
    sizes = [len(epoch) for epoch in epochs]

    assert sizes[:2] == [per_epoch, per_epoch] and sizes[-1] == 0, sizes
    assert_each_batch_once([sample for epoch in epochs for sample in epoch], count)
    # A drained epoch ends by the idle timeout, and that closes the socket while the workers live on.
    wait_for_peers(noised, 0, "after the drained epoch, workers still running")
    del batches, loader
    assert output_peers(noised) == set()


def test_two_ranks_share_one_daemon_and_rank_zero_reports_for_both(daemon, tmp_path, sockets):
    noised = daemon()
    count, workers = 64, 2
    feedback = f"ipc://{sockets}/feedback.sock"
    results = tmp_path / "ranks"
    results.mkdir()
    config = {"rendezvous": f"file://{tmp_path}/rendezvous", "output": noised.output_endpoint,
              "feedback": feedback, "results": str(results), "workers": workers,
              "idle_end_ms": IDLE_END_MS, "loader_timeout_s": LOADER_TIMEOUT_S, "generation": 500}
    # Stands in for the daemon's feedback socket; read after the ranks end, so it holds every report.
    with Consumer(feedback, bind=True, hwm=10_000) as reports_in:
        ranks = torch.multiprocessing.start_processes(run_rank, args=(2, config), nprocs=2, join=False,
                                                      start_method="spawn")
        try:
            wait_for_peers(noised, 2 * workers, "two ranks with two workers each")
            feeder = Feeder(noised, count)
            feeder.start()
            deadline = time.monotonic() + 4 * WAIT_S
            while not ranks.join(timeout=1):
                if time.monotonic() > deadline:
                    pytest.fail(f"the ranks did not finish within {4 * WAIT_S} s")
        finally:
            for process in ranks.processes:
                if process.is_alive():
                    process.kill()
        feeder.finish()
        records = [json.loads((results / f"rank{rank}.json").read_text()) for rank in range(2)]
        steps = records[0]["steps"]
        resumed, *reports = receive(reports_in, steps + 1, timeout_ms=10_000)
        assert reports_in.recv(timeout_ms=300) is None, "only rank 0 reports"

    seqs = records[0]["seqs"] + records[1]["seqs"]
    assert sorted(seqs) == list(range(count)), "every batch reaches exactly one rank"
    assert sorted(records[0]["indices"] + records[1]["indices"]) == list(range(count))
    assert all(record["seqs"] for record in records), f"a rank got no batch: {[len(r['seqs']) for r in records]}"
    assert records[1]["steps"] == steps == max(len(record["seqs"]) for record in records)
    # Both ranks hold the same sum of their two losses at every step.
    assert records[0]["reduced"] == records[1]["reduced"]
    assert records[0]["reduced"] == [a + b for a, b in zip(records[0]["local"], records[1]["local"])]
    # Rank 0's generation (500, not rank 1's 501) on both ranks and in every report after the resume.
    assert [record["generation"] for record in records] == [500, 500]
    assert (resumed.metadata["step"], resumed.metadata["generation"]) == ("0", "500")
    for step, report in enumerate(reports):
        assert report.metadata["step"] == str(step) and report.metadata["generation"] == "500"
        expected = records[0]["sigma"][step] + records[1]["sigma"][step]  # rank order
        assert report["sigma"].tolist() == pytest.approx(expected, abs=0), f"step {step}"
        assert len(report["loss"]) == len(expected)
    for record in records:
        assert "different steps [0, 1]" in record["mismatch_error"]


DTYPES = {"f32": (np.float32, torch.float32), "f16": (np.float16, torch.float16),
          "bf16": (ml_dtypes.bfloat16, torch.bfloat16)}


def tensor_bytes(tensor) -> bytes:
    return tensor.reshape(-1).view(torch.uint8).numpy().tobytes()


def assert_one_frame(tensors: dict) -> None:
    """The tensors' memory tiles one contiguous span: views of one message, not copies."""
    spans = sorted((t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()) for t in tensors.values())
    for (_, end), (begin, _) in zip(spans, spans[1:]):
        assert begin == end, f"tensor memory is not one frame: spans {spans}"


def test_consumer_as_torch_matches_the_numpy_decode_bit_for_bit(daemon):
    """Twin daemons (same seed, same inputs and noise ids) produce the same bytes; one is read as
    torch, the other as numpy."""
    inputs = [{"latents": latents(index)["latents"].astype(dtype),
               "noise_id": np.arange(4, dtype=np.uint64) + 10 * index}
              for index, (dtype, _) in enumerate(DTYPES.values())]
    received = {}
    for name, as_torch in (("torch", True), ("numpy", False)):
        noised = daemon({"seed": 77, "output": {"dtype": "input"}}, name=name)
        with Producer(noised.acked_endpoint) as producer, Consumer(noised.output_endpoint, as_torch=as_torch) as consumer:
            received[name] = []
            for batch in inputs:  # lockstep keeps each output's step the same on both daemons
                producer.send(batch, timeout_ms=FEED_TIMEOUT_MS)
                received[name] += receive(consumer, 1)
    for (label, (_, torch_dtype)), as_torch, as_numpy in zip(DTYPES.items(), received["torch"], received["numpy"]):
        assert set(as_torch) == set(as_numpy) == {"z_t", "eps", "sigma", "noise_id"}
        assert as_torch["z_t"].dtype == as_torch["eps"].dtype == torch_dtype, label
        assert as_torch["sigma"].dtype == torch.float32 and as_torch["noise_id"].dtype == torch.uint64
        for name, tensor in as_torch.items():
            assert tensor_bytes(tensor) == as_numpy[name].tobytes(), f"{label} {name}"
            assert tuple(tensor.shape) == as_numpy[name].shape
        assert_one_frame(as_torch)
        assert as_torch.seq == as_numpy.seq and as_torch.metadata == as_numpy.metadata


def test_to_torch_views_every_dtype_without_a_copy(tmp_path):
    arrays = {"f32": np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4),
              "f16": np.linspace(-2, 2, 6).astype(np.float16),
              "bf16": np.array([1.0, -0.0, np.inf, 3.140625, 1e-40], np.float32).astype(ml_dtypes.bfloat16),
              "f8": np.array([0.5, -448, 2], np.float32).astype(ml_dtypes.float8_e4m3fn),
              "u64": np.array([0, 2**64 - 1], np.uint64), "i16": np.array([-3, 7], np.int16),
              "flag": np.array([True, False])}
    expected = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f8": torch.float8_e4m3fn,
                "u64": torch.uint64, "i16": torch.int16, "flag": torch.bool}
    message = encode(arrays)
    decoded, _ = decode(message)
    for name, array in decoded.items():
        tensor = to_torch(array)
        assert tensor.dtype == expected[name] and tuple(tensor.shape) == array.shape
        assert tensor.data_ptr() == array.ctypes.data, f"{name} was copied"
        assert tensor_bytes(tensor) == arrays[name].tobytes()
    np.testing.assert_array_equal(to_torch(decoded["bf16"]).float().numpy(), arrays["bf16"].astype(np.float32))
    raw = decoded["bf16"].view(np.uint16)  # bf16 bits as a decoder without ml_dtypes would hold them
    assert torch.equal(to_torch(raw, torch.bfloat16), to_torch(decoded["bf16"]))
    assert to_torch(raw, torch.bfloat16).data_ptr() == raw.ctypes.data
    with pytest.raises(ValueError, match="same width"):
        to_torch(decoded["f32"], torch.bfloat16)

    endpoint = f"ipc://{socket_dir(tmp_path)}/loop.sock"
    with Consumer(endpoint, bind=True, as_torch=True) as consumer, Producer(endpoint, acknowledged=False) as producer:
        producer.send_bytes(message, timeout_ms=5000)
        batch = consumer.recv(timeout_ms=5000)
    assert {name: t.dtype for name, t in batch.items()} == expected
    assert all(tensor_bytes(batch[name]) == arrays[name].tobytes() for name in arrays)
    assert_one_frame(batch)


def test_in_the_main_process_device_moves_batches_and_sockets_close_with_the_iteration(daemon):
    noised = daemon()
    feeder = Feeder(noised, 6)
    feeder.start()
    dataset = NoisedDataset(noised.output_endpoint, device="meta", max_batches=3, timeout_ms=IDLE_END_MS,
                            on_timeout="stop")
    first = list(dataset)  # ends at max_batches: the socket stays open for the next epoch
    assert [sample["z_t"].device.type for sample in first] == ["meta"] * 3
    assert all(isinstance(sample["seq"], int) for sample in first)
    kept = wait_for_peers(noised, 1, "after an epoch that ended at max_batches")
    second = list(dataset)  # the batches the open socket took meanwhile
    assert output_peers(noised) == kept, "the next epoch reuses the socket"
    feeder.finish()
    dataset.close()
    wait_for_peers(noised, 0, "after close()")

    feeder = Feeder(noised, 1, first_index=6)
    feeder.start()
    on_cpu = NoisedDataset(noised.output_endpoint, device="cpu", timeout_ms=IDLE_END_MS, on_timeout="stop")
    batches = iter(on_cpu)
    third = next(batches)
    feeder.finish()
    assert third["z_t"].device.type == "cpu" and third["eps"].dtype == torch.float32
    assert output_peers(noised) != set()
    batches.close()  # an iteration abandoned half way closes its socket
    wait_for_peers(noised, 0, "after the iterator was closed")
    assert_each_batch_once(first + second + [third], 7)


def test_a_dataset_holding_a_socket_still_goes_to_a_spawned_worker(daemon):
    noised = daemon()
    feeder = Feeder(noised, 2)
    feeder.start()
    dataset = NoisedDataset(noised.output_endpoint, max_batches=2, timeout_ms=IDLE_END_MS)
    in_main = list(dataset)
    feeder.finish()
    kept = wait_for_peers(noised, 1, "the main process's epoch ended at max_batches")
    # The spawned worker gets a pickled copy without the main process's socket, and opens its own.
    loader = DataLoader(dataset, batch_size=None, num_workers=1, multiprocessing_context="spawn",
                        timeout=LOADER_TIMEOUT_S)
    batches = iter(loader)
    wait_for_peers(noised, 2, "the spawned worker beside the main process's kept socket")
    dataset.close()  # the worker is left as the only peer, to take the next batches
    wait_for_peers(noised, 1, "after close() in the main process")
    feeder = Feeder(noised, 2, first_index=2)
    feeder.start()
    in_worker = list(batches)
    feeder.finish()
    assert output_peers(noised).isdisjoint(kept)
    assert_each_batch_once(in_main + in_worker, 4)
    del batches, loader
    wait_for_peers(noised, 0, "after the loader")


def test_a_device_other_than_cpu_is_refused_in_a_worker_and_to_device_moves_after_the_loader(daemon):
    noised = daemon()
    refused = NoisedDataset(noised.output_endpoint, device="meta", timeout_ms=IDLE_END_MS)
    with pytest.raises(ValueError, match="to_device"):
        next(iter(DataLoader(refused, batch_size=None, num_workers=1, timeout=LOADER_TIMEOUT_S)))

    feeder = Feeder(noised, 2)
    feeder.start()
    dataset = NoisedDataset(noised.output_endpoint, device="cpu", max_batches=2, timeout_ms=IDLE_END_MS,
                            on_timeout="stop")
    samples = [to_device(sample, "meta") for sample in DataLoader(dataset, batch_size=None, num_workers=1,
                                                                  timeout=LOADER_TIMEOUT_S)]
    feeder.finish()
    assert [(s["z_t"].device.type, s["sigma"].device.type) for s in samples] == [("meta", "meta")] * 2
    assert sorted(int(s["metadata"]["index"]) for s in samples) == [0, 1]


def test_a_timeout_raises_naming_the_endpoint_or_ends_the_iteration(tmp_path):
    endpoint = f"ipc://{socket_dir(tmp_path)}/nobody.sock"
    with pytest.raises(TimeoutError, match=f"no batch from {endpoint} within 200 ms"):
        next(iter(NoisedDataset(endpoint, timeout_ms=200)))
    assert list(NoisedDataset(endpoint, timeout_ms=200, on_timeout="stop")) == []
    with pytest.raises(ValueError, match="on_timeout"):
        NoisedDataset(endpoint, on_timeout="wait")
    with pytest.raises(ValueError, match="curve_server_key"):
        NoisedDataset(endpoint, curve_secret_key="x" * 40)


def test_report_step_without_distributed_is_one_report(tmp_path):
    endpoint = f"ipc://{socket_dir(tmp_path)}/feedback.sock"
    with Consumer(endpoint, bind=True) as reports, Reporter(endpoint) as reporter:
        report_step(reporter, 5, torch.tensor([0.25, 0.5]), torch.tensor([1.0, 2.0], dtype=torch.bfloat16))
        got = reports.recv(timeout_ms=5000)
    assert got.metadata["step"] == "5"
    assert got["sigma"].tolist() == [0.25, 0.5] and got["loss"].tolist() == [1.0, 2.0]


def test_the_ddp_example_trains_two_ranks_on_one_daemon(noised_bin):
    examples = Path(__file__).resolve().parents[1] / "examples"
    environment = dict(os.environ, PYTHONPATH=str(examples.parent))
    steps = 30
    try:
        finished = subprocess.run(
            [sys.executable, str(examples / "train_ddp.py"), "--spawn-daemon", str(noised_bin), "--world-size", "2",
             "--workers", "1", "--steps", str(steps), "--print-every", "10"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=EXAMPLE_TIMEOUT_S, env=environment)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"train_ddp.py did not finish within {EXAMPLE_TIMEOUT_S} s: {error.stdout!r}")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert f"final steps={steps} batches_per_rank=[{steps}, {steps}]" in finished.stdout, finished.stdout
    stopped = re.search(r"noised exited with 0: .*msg=\"?stopped.* reports=(\d+) .*sent=(\d+) .*step=(\d+)",
                        finished.stdout)
    assert stopped, finished.stdout
    reports, sent, daemon_step = (int(value) for value in stopped.groups())
    # The daemon's step follows rank 0's reports of the optimizer step, not the batches it sent.
    assert 0 < reports <= steps and daemon_step <= steps < 2 * steps <= sent, finished.stdout
