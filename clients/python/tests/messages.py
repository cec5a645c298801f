"""Hand-built input messages: one malformed message per rejection reason, and good batches.

Each malformed message has exactly one defect next to otherwise valid latents, so the daemon's
reason label is unambiguous. `codec_error` is what the Python decoder says about the same bytes
(None for rules the daemon adds on top of the file format).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Callable

import ml_dtypes
import numpy as np

from noised_client import encode

DAEMON_MAX_HEADER_BYTES = 1 << 20
# The daemon under test is configured with this limit; TOO_LARGE_BYTES exceeds it.
MAX_MESSAGE_BYTES = 4 << 20
TOO_LARGE_BYTES = 5 << 20

LATENT_SHAPE = (2, 4)
LATENT_BYTES = 2 * 4 * 4


def with_header(header: dict, data: bytes) -> bytes:
    """A message with this exact header (padded to 8 bytes) and data, valid or not."""
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def raw_header(text: bytes, data: bytes = b"") -> bytes:
    return struct.pack("<Q", len(text)) + text + data


def latents_entry(begin: int = 0) -> dict:
    return {"dtype": "F32", "shape": list(LATENT_SHAPE), "data_offsets": [begin, begin + LATENT_BYTES]}


def good_batch(index: int, *, batch: int = 2, shape=(4,), dtype=np.float32) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000 + index)
    return {"latents": rng.standard_normal((batch, *shape)).astype(dtype)}


def _latents(dtype=np.float32, shape=LATENT_SHAPE) -> np.ndarray:
    return np.random.default_rng(5).standard_normal(shape).astype(dtype)


def _nonfinite(dtype, value) -> bytes:
    latents = _latents(dtype)
    latents[1, 2] = value
    return encode({"latents": latents})


@dataclass(frozen=True)
class Malformed:
    reason: str
    build: Callable[[], bytes]
    codec_error: str | None
    note: str


MALFORMED: list[Malformed] = [
    Malformed("truncated", lambda: b"\x10\x00\x00", "shorter than the 8-byte", "under 8 bytes"),
    Malformed("truncated", lambda: struct.pack("<Q", 64) + b'{"latents":', "is truncated", "header cut short"),
    Malformed(
        "header_too_large",
        lambda: encode({"latents": _latents()}, {"blob": "x" * (DAEMON_MAX_HEADER_BYTES + (64 << 10))}),
        "exceeds",
        "complete message whose header is over 1 MiB",
    ),
    Malformed("bad_header", lambda: raw_header(b'{"latents": {"dtype": "F32",,}}   '), "not valid JSON", "bad JSON"),
    Malformed("bad_header", lambda: raw_header(b"[1, 2, 3]      "), "must be a JSON object", "JSON array"),
    # Offsets that tile but run past the end of the message: the message was cut short.
    Malformed(
        "truncated",
        lambda: with_header(
            {"latents": latents_entry(), "extra": {"dtype": "F32", "shape": [16], "data_offsets": [32, 96]}},
            bytes(64),
        ),
        "outside the 64-byte data",
        "offsets past the end of the data",
    ),
    Malformed(
        "bad_offsets",
        lambda: with_header(
            {"latents": latents_entry(), "extra": {"dtype": "F32", "shape": [8], "data_offsets": [64, 96]}},
            bytes(96),
        ),
        "gap",
        "a gap between tensors",
    ),
    Malformed(
        "bad_offsets",
        lambda: with_header(
            {"latents": latents_entry(), "extra": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}},
            bytes(48),
        ),
        "overlaps",
        "overlapping tensors",
    ),
    Malformed(
        "unknown_dtype",
        lambda: with_header(
            {"latents": latents_entry(), "extra": {"dtype": "F128", "shape": [2], "data_offsets": [32, 64]}},
            bytes(64),
        ),
        "unknown dtype 'F128'",
        "dtype tag F128",
    ),
    Malformed(
        "shape_mismatch",
        lambda: with_header({"latents": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 16]}}, bytes(16)),
        "needs 32 bytes, offsets span 16",
        "shape [2, 4] F32 over 16 bytes",
    ),
    Malformed("missing_latents", lambda: encode({"other": _latents()}), None, "no latents tensor"),
    Malformed("bad_latent_dtype", lambda: encode({"latents": np.ones(LATENT_SHAPE, np.int32)}), None, "I32 latents"),
    Malformed("empty_batch", lambda: encode({"latents": np.zeros((0, 4), np.float32)}), None, "batch of 0"),
    Malformed("empty_batch", lambda: encode({"latents": np.zeros((2, 0), np.float32)}), None, "no elements per sample"),
    # 82 bytes that claim 2^40 samples of nothing: valid as a file, and once enough to kill the daemon.
    Malformed(
        "batch_too_large",
        lambda: with_header({"latents": {"dtype": "F32", "shape": [1 << 40, 0], "data_offsets": [0, 0]}}, b""),
        None,
        "B = 2^40 in zero bytes",
    ),
    Malformed("batch_too_large", lambda: encode({"latents": np.zeros((4097, 1), np.float32)}), None,
              "B = 4097 over max_batch 4096"),
    Malformed(
        "bad_noise_id",
        lambda: encode({"latents": _latents(), "noise_id": np.array([1.0, 2.0], np.float32)}),
        None,
        "F32 noise ids",
    ),
    Malformed(
        "bad_noise_id",
        lambda: encode({"latents": _latents(), "noise_id": np.array([1, 2, 3], np.int64)}),
        None,
        "3 noise ids for a batch of 2",
    ),
    Malformed("reserved_name", lambda: encode({"latents": _latents(), "eps": _latents()}), None, "input named eps"),
    Malformed(
        "reserved_name", lambda: encode({"latents": _latents(), "sigma": np.ones(2, np.float32)}), None, "input named sigma"
    ),
    Malformed(
        "message_too_large",
        lambda: encode({"latents": np.zeros((2, TOO_LARGE_BYTES // 8), np.float32)}),
        None,
        "5 MiB message over a 4 MiB limit",
    ),
    Malformed("nonfinite", lambda: _nonfinite(np.float32, np.nan), None, "NaN in F32 latents"),
    Malformed("nonfinite", lambda: _nonfinite(ml_dtypes.bfloat16, np.inf), None, "inf in BF16 latents"),
]
