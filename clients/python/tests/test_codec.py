"""The wire protocol v1 codec: round trips, interoperability with safetensors, strict validation.

Runs without the daemon. The malformed messages built here are reused by the daemon tests.
"""

import struct

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy

from noised_client import DTYPES, ProtocolError, decode, encode
from tests import messages


def sample_tensors():
    rng = np.random.default_rng(0)
    return {
        "latents": rng.standard_normal((2, 3, 5)).astype(ml_dtypes.bfloat16),
        "odd_bytes": np.arange(3, dtype=np.uint8),
        "f64": rng.standard_normal(7),
        "flags": np.array([True, False, True]),
        "ids": np.array([1, -2], dtype=np.int64),
        "half": np.arange(5, dtype=np.float16),
        "fp8": np.linspace(-2, 2, 5).astype(ml_dtypes.float8_e4m3fn),
        "empty": np.zeros((0, 4), np.float32),
        "scalar": np.array(2.5, np.float32),
    }


def test_round_trip_every_dtype_and_metadata():
    tensors = {tag.lower(): np.arange(6).astype(dtype).reshape(2, 3) for tag, dtype in DTYPES.items()}
    tensors.update(sample_tensors())
    metadata = {"caption": "a cat ✓", "empty": ""}
    got, got_metadata = decode(encode(tensors, metadata))
    assert got_metadata == metadata
    assert list(got) == list(tensors)
    for name, array in tensors.items():
        assert got[name].dtype == array.dtype and got[name].shape == np.shape(array), name
        assert got[name].tobytes() == np.asarray(array).tobytes(), name


def test_header_is_padded_so_data_is_8_aligned():
    for count in range(1, 12):
        buffer = encode({"x" * count: np.zeros(count, np.uint8)}, {"k": "v" * count})
        (header_length,) = struct.unpack_from("<Q", buffer)
        header = buffer[8 : 8 + header_length]
        assert header_length % 8 == 0
        assert header.rstrip(b" ").endswith(b"}") and len(header.rstrip(b" ")) > header_length - 8


def test_decode_is_zero_copy_and_read_only():
    buffer = bytearray(encode({"a": np.arange(4, dtype=np.float32)}))
    view = memoryview(buffer)
    tensors, _ = decode(view)
    assert np.shares_memory(tensors["a"], np.frombuffer(view, np.uint8))
    frozen, _ = decode(bytes(buffer))
    assert not frozen["a"].flags.writeable


def test_interoperates_with_the_safetensors_package():
    numpy_only = (np.dtype(ml_dtypes.bfloat16), np.dtype(ml_dtypes.float8_e4m3fn))  # safetensors.numpy lacks these
    tensors = {k: v for k, v in sample_tensors().items() if v.dtype not in numpy_only}
    theirs = safetensors.numpy.load(encode(tensors, {"k": "v"}))
    for name, array in tensors.items():
        np.testing.assert_array_equal(theirs[name], array)
    ours, metadata = decode(safetensors.numpy.save(tensors, {"k": "v"}))
    assert metadata == {"k": "v"}
    for name, array in tensors.items():
        np.testing.assert_array_equal(ours[name], array)


def test_encode_rejects_what_cannot_be_sent():
    with pytest.raises(ProtocolError, match="no safetensors tag"):
        encode({"c": np.zeros(2, np.complex64)})
    with pytest.raises(ProtocolError, match="str to str"):
        encode({"a": np.zeros(1)}, {"n": 1})
    with pytest.raises(ProtocolError, match="reserved"):
        encode({"__metadata__": np.zeros(1)})


FORMAT_ERRORS = [case for case in messages.MALFORMED if case.codec_error is not None]
DAEMON_RULES = [case for case in messages.MALFORMED if case.codec_error is None]


@pytest.mark.parametrize("case", FORMAT_ERRORS, ids=lambda case: f"{case.reason}: {case.note}")
def test_decode_rejects_malformed_messages(case):
    with pytest.raises(ProtocolError, match=case.codec_error):
        decode(case.build(), max_header_bytes=messages.DAEMON_MAX_HEADER_BYTES)


@pytest.mark.parametrize("case", DAEMON_RULES, ids=lambda case: f"{case.reason}: {case.note}")
def test_daemon_rule_violations_are_well_formed_files(case):
    """Their only defect is the daemon's rule, so the daemon's reason label is unambiguous."""
    decode(case.build(), max_header_bytes=messages.DAEMON_MAX_HEADER_BYTES)


def test_decode_rejects_duplicates_and_gaps():
    good = encode({"a": np.zeros(2, np.float32), "b": np.zeros(2, np.float32)})
    (header_length,) = struct.unpack_from("<Q", good)
    header = good[8 : 8 + header_length].decode()
    duplicated = header.replace('"b"', '"a"')
    with pytest.raises(ProtocolError, match="duplicate key 'a'"):
        decode(good[:8] + duplicated.encode() + good[8 + header_length :])
    with pytest.raises(ProtocolError, match="gap"):
        decode(messages.with_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, bytes(8)))
    with pytest.raises(ProtocolError, match="cover 4 bytes but the data has 8"):
        decode(messages.with_header({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(8)))
