"""Sending batches through a running daemon and checking what comes back, always with timeouts."""

from __future__ import annotations

from typing import Iterable, Mapping

import ml_dtypes
import numpy as np
import pytest

from noised_client import Batch, Consumer, Producer

RECV_TIMEOUT_MS = 15_000
SEND_TIMEOUT_MS = 15_000
# Mantissa bits and the smallest normal exponent of each output dtype, for ulp-sized tolerances.
_FORMATS = {np.dtype(np.float32): (23, -126), np.dtype(np.float16): (10, -14),
            np.dtype(ml_dtypes.bfloat16): (7, -126)}


def receive(consumer: Consumer, count: int, timeout_ms: int = RECV_TIMEOUT_MS) -> list[Batch]:
    batches = []
    for _ in range(count):
        batch = consumer.recv(timeout_ms=timeout_ms)
        if batch is None:
            pytest.fail(f"received {len(batches)} of {count} batches; nothing came for {timeout_ms} ms")
        batches.append(batch)
    return batches


def assert_nothing_more(consumer: Consumer, wait_ms: int = 300) -> None:
    extra = consumer.recv(timeout_ms=wait_ms)
    assert extra is None, f"unexpected extra output with metadata {extra.metadata}"


class Session:
    """A producer and a consumer attached to one daemon, kept for several exchanges.

    Reusing one consumer matters: a consumer that has just closed can still be in the daemon's
    round-robin for a moment, and an output pushed to it would be lost.
    """

    def __init__(self, daemon):
        self.producer = Producer(daemon.input_endpoint, acknowledged=False)
        self.consumer = Consumer(daemon.output_endpoint)

    def send(self, batch: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> None:
        self.producer.send(batch, metadata, timeout_ms=SEND_TIMEOUT_MS)

    def exchange(self, batches: Iterable[Mapping[str, np.ndarray]], *, lockstep: bool = False,
                 metadata: Mapping[str, str] | None = None) -> list[Batch]:
        """Send batches and return the daemon's outputs in arrival order.

        lockstep waits for each output before sending the next input, which makes the daemon's
        emission order (and so its default noise ids and steps) follow the input order.
        """
        batches = list(batches)
        outputs = []
        for batch in batches:
            self.send(batch, metadata)
            if lockstep:
                outputs += receive(self.consumer, 1)
        if not lockstep:
            outputs = receive(self.consumer, len(batches))
        assert_nothing_more(self.consumer)
        return outputs

    def close(self) -> None:
        self.producer.close()
        self.consumer.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def exchange(daemon, batches: Iterable[Mapping[str, np.ndarray]], **options) -> list[Batch]:
    """One-shot Session.exchange, for a daemon that is only spoken to once."""
    with Session(daemon) as session:
        return session.exchange(batches, **options)


def as_f64(array: np.ndarray) -> np.ndarray:
    return np.asarray(array).astype(np.float32).astype(np.float64)


def ulp(values: np.ndarray, dtype) -> np.ndarray:
    """Spacing of dtype's values at the magnitude of each value (subnormal spacing near zero)."""
    mantissa_bits, min_exponent = _FORMATS[np.dtype(dtype)]
    magnitude = np.abs(np.asarray(values, np.float64))
    with np.errstate(divide="ignore"):
        exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1.0)))
    exponent = np.where(magnitude > 0, np.maximum(exponent, min_exponent), min_exponent)
    return 2.0 ** (exponent - mantissa_bits)


def expand(per_sample: np.ndarray, like: np.ndarray) -> np.ndarray:
    """A [B] array shaped to broadcast against a [B, ...] array."""
    return np.asarray(per_sample).reshape((-1,) + (1,) * (np.ndim(like) - 1))
