"""ZeroMQ endpoints for the noised daemon: a trainer-side Consumer and a producer-side Producer."""

from __future__ import annotations

import importlib
from typing import Iterator, Mapping

import numpy as np
import zmq

from .codec import decode, encode
from .keys import ClientKeys, validate_key

__all__ = ["Batch", "Consumer", "Producer"]


class Batch(dict):
    """One output message: tensor name -> array (or torch tensor), plus its string metadata."""

    def __init__(self, tensors: Mapping[str, object], metadata: Mapping[str, str]):
        super().__init__(tensors)
        self.metadata: dict[str, str] = dict(metadata)

    def _int_metadata(self, key: str) -> int | None:
        value = self.metadata.get(key)
        return None if value is None else int(value)

    @property
    def step(self) -> int | None:
        """The training step the daemon assigned this batch (`noised.step`), None if absent."""
        return self._int_metadata("noised.step")

    @property
    def seq(self) -> int | None:
        """The daemon's output sequence number (`noised.seq`), None if absent."""
        return self._int_metadata("noised.seq")

    @property
    def seed(self) -> int | None:
        """The noise stream seed (`noised.seed`), None if absent."""
        return self._int_metadata("noised.seed")


def _curve_keys(server_key: str | None, public_key: str | None, secret_key: str | None,
                keys: ClientKeys | None) -> tuple[str, ClientKeys] | None:
    """The server key and client keypair to use, or None for a plain (non-CURVE) socket."""
    if server_key is None and public_key is None and secret_key is None and keys is None:
        return None
    if server_key is None:
        raise ValueError("CURVE needs curve_server_key: the daemon's Z85 public key (its .pub file)")
    validate_key(server_key, "curve_server_key")
    if keys is not None:
        if public_key is not None or secret_key is not None:
            raise ValueError("give either keys= or curve_public_key=/curve_secret_key=, not both")
        return server_key, keys
    if secret_key is None:
        raise ValueError("CURVE needs the client's curve_secret_key (or keys=ClientKeys.load(prefix))")
    derived = ClientKeys.from_secret(secret_key)
    if public_key is not None and validate_key(public_key, "curve_public_key") != derived.public_key:
        raise ValueError("curve_public_key does not belong to curve_secret_key")
    return server_key, derived


def _connect(socket: zmq.Socket, endpoint: str, bind: bool, hwm: int, hwm_option: int,
             curve: tuple[str, ClientKeys] | None = None) -> zmq.Socket:
    socket.setsockopt(hwm_option, hwm)
    try:
        if curve is not None:
            server_key, keys = curve
            socket.curve_serverkey = server_key.encode("ascii")
            socket.curve_publickey = keys.public_key.encode("ascii")
            socket.curve_secretkey = keys.secret_key.encode("ascii")
        if bind:
            socket.bind(endpoint)
        else:
            socket.connect(endpoint)
    except zmq.ZMQError:
        socket.close(linger=0)
        raise
    return socket


def _to_torch(array: np.ndarray):
    """Wrap a read-only numpy view as a torch tensor over the same memory (no copy)."""
    import warnings

    import ml_dtypes
    import torch

    if array.dtype == np.dtype(ml_dtypes.bfloat16):
        source, torch_dtype = array.view(np.int16), torch.bfloat16
    else:
        source, torch_dtype = array, None
    with warnings.catch_warnings():
        # Frames are read-only; the tensors are views the caller must not write in place.
        warnings.filterwarnings("ignore", message=".*not writable.*")
        tensor = torch.from_numpy(source)
    return tensor.view(torch_dtype) if torch_dtype is not None else tensor


class Consumer:
    """PULL end for the daemon's output: yields `Batch`es decoded without copying the frame.

    Iterating blocks until a message arrives; `recv(timeout_ms)` returns None on timeout.
    With ``as_torch=True`` the tensors are torch tensors sharing the frame's memory.
    For a daemon with CURVE security give ``curve_server_key`` (the daemon's Z85 public key) and the
    client's keys: ``keys=ClientKeys.load("trainer-1")`` or ``curve_secret_key``/``curve_public_key``.
    """

    def __init__(self, endpoint: str, *, bind: bool = False, hwm: int = 16, as_torch: bool = False,
                 context: zmq.Context | None = None, curve_server_key: str | None = None,
                 curve_public_key: str | None = None, curve_secret_key: str | None = None,
                 keys: ClientKeys | None = None):
        if as_torch:
            importlib.import_module("torch")  # fail now, not at the first message
        curve = _curve_keys(curve_server_key, curve_public_key, curve_secret_key, keys)
        self.endpoint = endpoint
        self.as_torch = as_torch
        context = context or zmq.Context.instance()
        self._socket = _connect(context.socket(zmq.PULL), endpoint, bind, hwm, zmq.RCVHWM, curve)
        self._socket.setsockopt(zmq.LINGER, 0)

    def recv(self, timeout_ms: int | None = None) -> Batch | None:
        """The next batch, or None if none arrived within timeout_ms (None waits forever)."""
        if timeout_ms is not None and not self._socket.poll(timeout_ms, zmq.POLLIN):
            return None
        frame = self._socket.recv(copy=False)
        # Read-only so the arrays behave the same as ones decoded from bytes.
        tensors, metadata = decode(frame.buffer.toreadonly())
        if self.as_torch:
            tensors = {name: _to_torch(array) for name, array in tensors.items()}
        return Batch(tensors, metadata)

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.recv()

    def close(self) -> None:
        self._socket.close(linger=0)

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Producer:
    """PUSH end for the daemon's input: encodes tensors and metadata into one frame per batch.

    On close, queued messages get up to ``linger_ms`` to leave before the socket is dropped.
    CURVE keys are given as for `Consumer`.
    """

    def __init__(self, endpoint: str, *, bind: bool = False, hwm: int = 16, linger_ms: int = 5000,
                 context: zmq.Context | None = None, curve_server_key: str | None = None,
                 curve_public_key: str | None = None, curve_secret_key: str | None = None,
                 keys: ClientKeys | None = None):
        curve = _curve_keys(curve_server_key, curve_public_key, curve_secret_key, keys)
        self.endpoint = endpoint
        self._linger_ms = linger_ms
        context = context or zmq.Context.instance()
        self._socket = _connect(context.socket(zmq.PUSH), endpoint, bind, hwm, zmq.SNDHWM, curve)

    def send(self, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None, *,
             timeout_ms: int | None = None) -> None:
        """Encode and send one batch; raises TimeoutError if it cannot be queued within timeout_ms."""
        self.send_bytes(encode(tensors, metadata), timeout_ms=timeout_ms)

    def send_bytes(self, message: bytes, *, timeout_ms: int | None = None) -> None:
        """Send an already encoded message (e.g. a .safetensors file read from disk) as one frame."""
        if timeout_ms is not None and not self._socket.poll(timeout_ms, zmq.POLLOUT):
            raise TimeoutError(f"could not queue a message to {self.endpoint} within {timeout_ms} ms")
        self._socket.send(message, copy=False)

    def close(self) -> None:
        self._socket.close(linger=self._linger_ms)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
