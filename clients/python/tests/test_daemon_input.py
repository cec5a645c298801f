"""End-to-end: what the daemon passes through, and every bad input it must reject while serving on."""

from collections import Counter

import ml_dtypes
import numpy as np

from noised_client import Consumer, Producer
from tests import messages
from tests.harness import socket_dir
from tests.exchange import SEND_TIMEOUT_MS, Session, assert_nothing_more, exchange, receive

OUTPUT_NAMES = {"z_t", "eps", "sigma", "noise_id"}


def test_passthrough_tensors_are_byte_exact_and_metadata_is_kept(daemon):
    noised = daemon({"input": {"tensor": "clean"}})
    passthrough = {
        "odd_bytes": np.arange(3, dtype=np.uint8),
        "tokens": np.arange(10, dtype=np.int32).reshape(2, 5) - 4,
        "mask": np.array([[True, False, True]] * 2),
        "scores": np.random.default_rng(2).standard_normal(7),
        "half": np.arange(5, dtype=np.float16) / 3,
        "brain": (np.arange(3) / 7).astype(ml_dtypes.bfloat16),
        "i16": np.array([-32768, 1, 32767], np.int16),
        "u64": np.array([2**64 - 1], np.uint64),
        "fp8": np.linspace(-2, 2, 5).astype(ml_dtypes.float8_e4m3fn),
        "empty": np.zeros((0, 3), np.float32),
    }
    metadata = {"caption_hash": "9f86d081", "note": "a cat, ünïcödé ✓", "empty": ""}
    batch = {"clean": np.random.default_rng(1).standard_normal((2, 4, 6)).astype(np.float32), **passthrough}
    (got,) = exchange(noised, [batch], metadata=metadata)

    assert set(got) == OUTPUT_NAMES | set(passthrough)
    for name, array in passthrough.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        assert got[name].tobytes() == array.tobytes(), name
    for key, value in metadata.items():
        assert got.metadata[key] == value
    assert {"noised.step", "noised.seq", "noised.seed", "noised.protocol"} <= set(got.metadata)
    assert got["z_t"].shape == batch["clean"].shape


def test_every_bad_input_is_rejected_while_the_daemon_keeps_serving(daemon):
    noised = daemon({"input": {"max_message_bytes": messages.MAX_MESSAGE_BYTES}})
    with Session(noised) as session:
        for index, case in enumerate(messages.MALFORMED):
            session.producer.send_bytes(case.build(), timeout_ms=SEND_TIMEOUT_MS)
            session.send(messages.good_batch(index), {"probe": str(index)})
            (got,) = receive(session.consumer, 1)
            assert got.metadata.get("probe") == str(index), f"after {case.reason} ({case.note})"
            np.testing.assert_array_equal(got["z_t"].shape, messages.good_batch(index)["latents"].shape)
        assert_nothing_more(session.consumer)

    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.summary, f"no msg=stopped line:\n{stopped.stderr}"
    # A frame over max_message_bytes never reaches the daemon's memory: ZeroMQ closes that producer's
    # connection without reading it (the producer reconnects, so the next batch still arrives), and
    # the daemon counts and logs the closed connection.
    oversized = sum(case.reason == "message_too_large" for case in messages.MALFORMED)
    expected = Counter(case.reason for case in messages.MALFORMED if case.reason != "message_too_large")
    total = len(messages.MALFORMED)
    rejected = total - oversized
    assert (stopped.count("received"), stopped.count("sent"), stopped.count("rejected")) == (total + rejected, total, rejected)
    for reason, count in expected.items():
        assert stopped.count(f"rejected_{reason}") == count, reason
    assert stopped.count("input_disconnects") >= oversized
    records = noised.log_records()
    assert set(expected) <= {r.get("reason") for r in records if r.get("level") == "warning"}
    assert any(r.get("reason") == "input_disconnect" and r.get("level") == "notice" for r in records)


def test_a_producer_can_bind_and_the_daemon_connect(daemon, tmp_path):
    """The daemon's input may connect to a producer that binds (e.g. a data loader fanning out)."""
    endpoint = f"ipc://{socket_dir(tmp_path)}/loader.sock"
    with Producer(endpoint, acknowledged=False, bind=True) as producer:
        noised = daemon({"input": {"endpoint": endpoint, "bind": False}})
        with Consumer(noised.output_endpoint) as consumer:
            producer.send(messages.good_batch(0), {"from": "bound producer"}, timeout_ms=SEND_TIMEOUT_MS)
            (got,) = receive(consumer, 1)
    assert got.metadata["from"] == "bound producer"
