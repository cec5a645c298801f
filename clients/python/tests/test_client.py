"""Consumer and Producer over a local ipc socket pair, without the daemon."""

import ml_dtypes
import numpy as np
import pytest

from noised_client import Consumer, Producer, encode
from tests.harness import socket_dir


@pytest.fixture
def endpoint(tmp_path):
    return f"ipc://{socket_dir(tmp_path)}/loop.sock"


def test_batches_round_trip_with_metadata_accessors(endpoint):
    latents = np.arange(12, dtype=np.float32).reshape(2, 6).astype(ml_dtypes.bfloat16)
    with Consumer(endpoint, bind=True) as consumer, Producer(endpoint, acknowledged=False) as producer:
        producer.send({"z_t": latents}, {"noised.step": "4", "noised.seq": "17", "noised.seed": "99", "x": "y"},
                      timeout_ms=5000)
        producer.send_bytes(encode({"raw": np.ones(3, np.uint8)}), timeout_ms=5000)
        first = consumer.recv(timeout_ms=5000)
        second = consumer.recv(timeout_ms=5000)
        assert consumer.recv(timeout_ms=50) is None
    assert (first.step, first.seq, first.seed, first.metadata["x"]) == (4, 17, 99, "y")
    assert first["z_t"].dtype == latents.dtype and first["z_t"].tobytes() == latents.tobytes()
    assert not first["z_t"].flags.writeable  # a view of the received frame
    assert (second.step, second.seq, second.seed) == (None, None, None)
    np.testing.assert_array_equal(second["raw"], np.ones(3, np.uint8))


def test_consumer_iterates(endpoint):
    with Producer(endpoint, acknowledged=False, bind=True) as producer, Consumer(endpoint) as consumer:
        for index in range(3):
            producer.send({"i": np.array([index])}, timeout_ms=5000)
        first = consumer.recv(timeout_ms=5000)  # once it is here the other two are on the same pipe
        assert first is not None
        batches = iter(consumer)
        received = [int(first["i"][0])] + [int(next(batches)["i"][0]) for _ in range(2)]
    assert received == [0, 1, 2]


def test_producer_send_times_out_without_a_peer(endpoint):
    with Producer(endpoint, acknowledged=False, bind=True, hwm=1, linger_ms=0) as producer:
        with pytest.raises(TimeoutError, match="within 50 ms"):
            producer.send({"x": np.zeros(1)}, timeout_ms=50)



# Above glibc's largest mmap threshold, so that without reuse every message maps fresh pages.
MESSAGE_BYTES = 40 << 20
MESSAGES = 24
HOLD_EVERY = 4


def _receive_holding_some(endpoint: str, keep_freed_memory: bool, results) -> None:
    """In its own process (the allocator policy is process-wide): receive MESSAGES batches, keep
    every HOLD_EVERY-th, drop the rest; report whether the held ones still hold what they held,
    where each message's bytes were, and the page faults of the second half."""
    import resource

    with Consumer(endpoint, bind=True, hwm=2, keep_freed_memory=keep_freed_memory) as consumer:
        results.put("bound")
        held, addresses, faults = {}, [], 0
        for index in range(MESSAGES):
            if index == MESSAGES // 2:
                faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            batch = consumer.recv(timeout_ms=30_000)
            if batch is None:
                results.put(f"message {index} did not arrive in 30 s")
                return
            assert int(batch["z_t"][0]) == index % 251, (index, int(batch["z_t"][0]))
            addresses.append(batch["z_t"].__array_interface__["data"][0])
            if index % HOLD_EVERY == 0:
                held[index] = batch
            del batch
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
        intact = {index: bool(np.all(batch["z_t"] == index % 251)) for index, batch in held.items()}
    results.put((intact, addresses, faults / (MESSAGES - MESSAGES // 2)))


@pytest.mark.parametrize("keep_freed_memory", [False, True])
def test_a_batch_still_held_is_never_overwritten_while_released_memory_is_reused(tmp_path, keep_freed_memory):
    import multiprocessing

    endpoint = f"ipc://{socket_dir(tmp_path)}/hold.sock"
    spawn = multiprocessing.get_context("spawn")
    results = spawn.Queue()
    child = spawn.Process(target=_receive_holding_some, args=(endpoint, keep_freed_memory, results))
    child.start()
    try:
        assert results.get(timeout=60) == "bound"
        with Producer(endpoint, acknowledged=False, hwm=2) as producer:
            for index in range(MESSAGES):
                producer.send({"z_t": np.full(MESSAGE_BYTES, index % 251, np.uint8)}, timeout_ms=30_000)
            outcome = results.get(timeout=120)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
    assert not isinstance(outcome, str), outcome
    intact, addresses, faults_per_message = outcome
    assert intact == {index: True for index in range(0, MESSAGES, HOLD_EVERY)}
    for index, address in enumerate(addresses):
        assert address not in {addresses[i] for i in range(0, index, HOLD_EVERY)}, \
            f"message {index} was received into the bytes of a batch still held"
    if keep_freed_memory:
        # Fresh pages would fault once per 4 KiB page; reused ones are already mapped.
        pages = MESSAGE_BYTES // 4096
        assert faults_per_message < pages / 2, f"{faults_per_message:.0f} page faults per message of {pages} pages"
    assert child.exitcode == 0


def test_one_consumer_pulls_from_several_endpoints(tmp_path):
    sockets = socket_dir(tmp_path)
    endpoints = [f"ipc://{sockets}/a.sock", f"ipc://{sockets}/b.sock"]
    with Producer(endpoints[0], acknowledged=False, bind=True) as first, \
            Producer(endpoints[1], acknowledged=False, bind=True) as second, Consumer(endpoints) as consumer:
        for index in range(3):
            first.send({"from": np.array([0, index])}, timeout_ms=5000)
            second.send({"from": np.array([1, index])}, timeout_ms=5000)
        got = sorted(tuple(int(v) for v in consumer.recv(timeout_ms=5000)["from"]) for _ in range(6))
    assert got == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]


def test_bad_endpoint_lists_are_refused(tmp_path):
    with pytest.raises(ValueError, match="non-empty list of endpoints"):
        Consumer([])
    sockets = socket_dir(tmp_path)
    with pytest.raises(ValueError, match="bind takes one endpoint"):
        Consumer([f"ipc://{sockets}/a.sock", f"ipc://{sockets}/b.sock"], bind=True)
    with pytest.raises(Exception, match="tcp://nowhere:x"):
        Consumer(["ipc://" + str(sockets) + "/ok.sock", "tcp://nowhere:x"])
