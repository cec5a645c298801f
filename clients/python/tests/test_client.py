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
