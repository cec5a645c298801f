"""Wire protocol v1 codec: one ZeroMQ frame holds one safetensors file.

Layout: 8-byte little-endian header length N, N bytes of JSON
``{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}``,
then the data. Offsets are relative to the data start and must tile it exactly.
The writer pads the header with spaces so the data starts 8-aligned.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Mapping

import ml_dtypes
import numpy as np

__all__ = ["ProtocolError", "encode", "decode", "DTYPES", "dtype_tag"]

METADATA_KEY = "__metadata__"
# The safetensors reference implementation refuses headers over 100 MB.
DEFAULT_MAX_HEADER_BYTES = 100_000_000

DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
}
_TAGS: dict[np.dtype, str] = {dtype: tag for tag, dtype in DTYPES.items()}


class ProtocolError(ValueError):
    """A buffer or a set of tensors that is not a valid wire protocol v1 message."""


def dtype_tag(dtype: np.dtype) -> str:
    """The safetensors dtype tag of a numpy dtype (byte order is normalised to little-endian)."""
    normalised = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).byteorder == ">" else np.dtype(dtype)
    try:
        return _TAGS[normalised]
    except KeyError:
        raise ProtocolError(f"dtype {np.dtype(dtype)} has no safetensors tag") from None


def encode(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialise tensors (in insertion order) and string metadata into one message."""
    header: dict[str, object] = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ProtocolError(f"metadata must map str to str, got {key!r}: {type(value).__name__}")
        header[METADATA_KEY] = dict(metadata)
    chunks: list[np.ndarray] = []
    offset = 0
    for name, array in tensors.items():
        if not isinstance(name, str) or not name:
            raise ProtocolError(f"tensor names must be non-empty strings, got {name!r}")
        if name == METADATA_KEY:
            raise ProtocolError(f"{METADATA_KEY!r} is reserved for metadata, not a tensor name")
        array = np.asarray(array)
        tag = dtype_tag(array.dtype)
        data = np.asarray(array, dtype=DTYPES[tag])  # little-endian; ascontiguousarray would lift 0-d to 1-d
        if not data.flags.c_contiguous:
            data = data.copy(order="C")
        nbytes = data.nbytes
        header[name] = {"dtype": tag, "shape": list(data.shape), "data_offsets": [offset, offset + nbytes]}
        chunks.append(data.reshape(-1).view(np.uint8))  # bytes view: memoryview rejects ml_dtypes
        offset += nbytes
    header_bytes = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    header_bytes += b" " * (-len(header_bytes) % 8)
    return b"".join([struct.pack("<Q", len(header_bytes)), header_bytes, *chunks])


def _reject_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise ProtocolError(f"duplicate key {key!r} in header")
        result[key] = value
    return result


def _parse_header(raw: memoryview) -> dict[str, object]:
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as error:
        raise ProtocolError(f"header is not UTF-8: {error}") from None
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as error:
        raise ProtocolError(f"header is not valid JSON: {error}") from None
    if not isinstance(header, dict):
        raise ProtocolError(f"header must be a JSON object, got {type(header).__name__}")
    return header


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _parse_metadata(value: object) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ProtocolError(f"{METADATA_KEY} must be an object of strings")
    return value


def _parse_entry(name: str, entry: object, data_length: int) -> tuple[np.dtype, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ProtocolError(f"tensor {name!r}: entry must have exactly dtype, shape and data_offsets")
    tag, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if tag not in DTYPES:
        raise ProtocolError(f"tensor {name!r}: unknown dtype {tag!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise ProtocolError(f"tensor {name!r}: shape must be a list of non-negative integers, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_count(o) for o in offsets)):
        raise ProtocolError(f"tensor {name!r}: data_offsets must be two non-negative integers, got {offsets!r}")
    begin, end = offsets
    if begin > end or end > data_length:
        raise ProtocolError(f"tensor {name!r}: data_offsets {offsets} outside the {data_length}-byte data")
    dtype = DTYPES[tag]
    expected = math.prod(shape) * dtype.itemsize
    if end - begin != expected:
        raise ProtocolError(
            f"tensor {name!r}: shape {shape} of {tag} needs {expected} bytes, offsets span {end - begin}"
        )
    return dtype, tuple(shape), begin, end


def decode(buffer, *, max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse one message into (tensors, metadata) without copying tensor data.

    ``buffer`` is anything exposing the buffer protocol (bytes, memoryview, a zmq.Frame's
    ``.buffer``). The arrays are read-only views that keep the buffer alive; copy one to modify it.
    """
    view = memoryview(buffer).cast("B")
    if len(view) < 8:
        raise ProtocolError(f"message of {len(view)} bytes is shorter than the 8-byte header length")
    (header_length,) = struct.unpack_from("<Q", view, 0)
    if header_length > max_header_bytes:
        raise ProtocolError(f"header of {header_length} bytes exceeds the {max_header_bytes}-byte limit")
    if 8 + header_length > len(view):
        raise ProtocolError(f"header of {header_length} bytes is truncated: message has {len(view)} bytes")
    header = _parse_header(view[8 : 8 + header_length])
    data = view[8 + header_length :]
    metadata = _parse_metadata(header.pop(METADATA_KEY, {}))

    spans: list[tuple[int, int, str]] = []
    tensors: dict[str, np.ndarray] = {}
    for name, entry in header.items():
        dtype, shape, begin, end = _parse_entry(name, entry, len(data))
        spans.append((begin, end, name))
        count = (end - begin) // dtype.itemsize
        tensors[name] = np.frombuffer(data, dtype=dtype, count=count, offset=begin).reshape(shape)

    # Offsets must tile the data exactly: no gap, no overlap, nothing left over.
    position, previous = 0, None
    for begin, end, name in sorted(spans):
        if begin != position:
            kind = "overlaps" if begin < position else "leaves a gap before"
            raise ProtocolError(f"tensor {name!r} at {begin} {kind} the end of {previous!r} at {position}")
        position, previous = end, name
    if position != len(data):
        raise ProtocolError(f"tensors cover {position} bytes but the data has {len(data)}")
    return tensors, metadata
