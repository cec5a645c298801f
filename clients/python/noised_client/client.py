"""ZeroMQ endpoints for the noised daemon: a trainer-side Consumer and a producer-side Producer."""

from __future__ import annotations

import importlib
import json
import struct
import time
from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np
import zmq

from . import heap
from .codec import ProtocolError, decode, encode
from .keys import ClientKeys, validate_key
from .sending import send_within

__all__ = ["Batch", "Consumer", "DeliveryError", "DeliveryReport", "Producer", "Rejection"]


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

    @property
    def output(self) -> str | None:
        """With several outputs (`outputs`), the name of the one that sent this batch (`noised.output`)."""
        return self.metadata.get("noised.output")


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


def endpoint_list(endpoint: str | Sequence[str]) -> list[str]:
    """One endpoint or several, as a non-empty list."""
    endpoints = [endpoint] if isinstance(endpoint, str) else list(endpoint)
    if not endpoints or not all(isinstance(e, str) and e for e in endpoints):
        raise ValueError(f"expected an endpoint or a non-empty list of endpoints, got {endpoint!r}")
    return endpoints


def _connect(socket: zmq.Socket, endpoint: str | Sequence[str], bind: bool, hwm: int, hwm_option: int,
             curve: tuple[str, ClientKeys] | None = None) -> zmq.Socket:
    endpoints = endpoint_list(endpoint)
    if bind and len(endpoints) > 1:
        raise ValueError(f"bind takes one endpoint, got {len(endpoints)}: {endpoints}")
    socket.setsockopt(hwm_option, hwm)
    try:
        if curve is not None:
            server_key, keys = curve
            socket.curve_serverkey = server_key.encode("ascii")
            socket.curve_publickey = keys.public_key.encode("ascii")
            socket.curve_secretkey = keys.secret_key.encode("ascii")
        for address in endpoints:
            try:
                socket.bind(address) if bind else socket.connect(address)
            except zmq.ZMQError as error:
                raise zmq.ZMQError(error.errno, f"{address}: {error.strerror}") from error
    except zmq.ZMQError:
        socket.close(linger=0)
        raise
    return socket


def _to_torch(array: np.ndarray):
    """The torch view of a received array: `noised_client.torch.to_torch`, the one conversion."""
    from .torch import to_torch

    return to_torch(array)


class Consumer:
    """PULL end for the daemon's output: yields `Batch`es decoded without copying the frame.

    Iterating blocks until a message arrives; `recv(timeout_ms)` returns None on timeout.
    With ``as_torch=True`` the tensors are torch tensors sharing the frame's memory.
    ``endpoint`` is one output endpoint or a list of several (one daemon each, see
    docs/operations.md#scaling-out): the socket fair-queues batches from all of them.
    For a daemon with CURVE security give ``curve_server_key`` (the daemon's Z85 public key) and the
    client's keys: ``keys=ClientKeys.load("trainer-1")`` or ``curve_secret_key``/``curve_public_key``.

    A batch's arrays view the received message: it lives as long as any of them does, and a later
    message never overwrites it. ``keep_freed_memory=True`` makes this process reuse the memory of
    released messages for new ones (`noised_client.heap`), which for messages of tens of MiB is
    several times cheaper than letting glibc map fresh pages; it changes the allocator for the
    whole process, and this Consumer then gets its own ZeroMQ context so libzmq's I/O thread
    starts under the policy.
    """

    def __init__(self, endpoint: str | Sequence[str], *, bind: bool = False, hwm: int = 16, as_torch: bool = False,
                 context: zmq.Context | None = None, curve_server_key: str | None = None,
                 curve_public_key: str | None = None, curve_secret_key: str | None = None,
                 keys: ClientKeys | None = None, keep_freed_memory: bool = False):
        if as_torch:
            importlib.import_module("noised_client.torch")  # fail now, not at the first message
        curve = _curve_keys(curve_server_key, curve_public_key, curve_secret_key, keys)
        self.endpoint = endpoint
        self.as_torch = as_torch
        self._own_context = None
        if keep_freed_memory:
            heap.keep_freed_memory()
            if context is None:
                context = self._own_context = zmq.Context()
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
        if self._own_context is not None:
            self._own_context.term()
            self._own_context = None

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class Producer:
    """Producer end for the daemon's input: encodes tensors and metadata into one frame per batch.

    By default it speaks the acknowledged input (docs/protocol.md): give the daemon's
    ``input.acked_endpoint``. Every batch is answered; at most ``window`` batches (default ``hwm``)
    wait for an answer at a time, so ``send`` blocks while the daemon's output is blocked. ``close``
    waits up to ``ack_timeout_ms`` for the rest and raises `DeliveryError` if any batch was
    rejected, left unsent by a stopping daemon, or not answered; ``report`` says which.
    ``acknowledged=False`` is a plain PUSH to ``input.endpoint``: nothing is confirmed, and over
    ``ipc://`` batches still queued when the producer closes can be lost (libzmq issue #4660);
    on close they get up to ``linger_ms`` to leave. CURVE keys are given as for `Consumer`.
    """

    def __init__(self, endpoint: str, *, acknowledged: bool = True, bind: bool = False, hwm: int = 16,
                 window: int | None = None, ack_timeout_ms: int = 30_000, linger_ms: int = 5000,
                 context: zmq.Context | None = None, curve_server_key: str | None = None,
                 curve_public_key: str | None = None, curve_secret_key: str | None = None,
                 keys: ClientKeys | None = None):
        window = hwm if window is None else window
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        if ack_timeout_ms < 0:
            raise ValueError(f"ack_timeout_ms must be >= 0, got {ack_timeout_ms}")
        curve = _curve_keys(curve_server_key, curve_public_key, curve_secret_key, keys)
        self.endpoint = endpoint
        self.acknowledged = acknowledged
        self.window = window
        self.ack_timeout_ms = ack_timeout_ms
        self.report = DeliveryReport()
        self._linger_ms = linger_ms
        self._next_ticket = 0
        self._waiting: dict[int, None] = {}  # tickets sent and not answered, in send order
        self._closed = False
        context = context or zmq.Context.instance()
        kind = zmq.DEALER if acknowledged else zmq.PUSH
        self._socket = _connect(context.socket(kind), endpoint, bind, hwm, zmq.SNDHWM, curve)
        if acknowledged:
            self._socket.setsockopt(zmq.RCVHWM, max(hwm, window))

    @property
    def unacknowledged(self) -> int:
        """Batches sent and not answered yet."""
        return len(self._waiting)

    def send(self, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None, *,
             timeout_ms: int | None = None) -> int | None:
        """Encode and send one batch; see `send_bytes`."""
        return self.send_bytes(encode(tensors, metadata), timeout_ms=timeout_ms)

    def send_bytes(self, message: bytes, *, timeout_ms: int | None = None) -> int | None:
        """Send an already encoded message (e.g. a .safetensors file read from disk) as one frame.

        Acknowledged, it first waits for a free place in the window (up to timeout_ms, default
        ack_timeout_ms) and returns the batch's ticket, which `report` uses; plain, it returns None.
        Raises TimeoutError if the batch cannot be sent in time; the batch was then not sent.
        """
        if self._closed:
            raise RuntimeError(f"the producer for {self.endpoint} is closed")
        if not self.acknowledged:
            send_within(self._socket, [message], timeout_ms, f"a message to {self.endpoint}")
            return None
        wait_ms = self.ack_timeout_ms if timeout_ms is None else timeout_ms
        deadline = time.monotonic() + wait_ms / 1000
        self._take_replies(0)
        while len(self._waiting) >= self.window:
            if not self._take_replies(_remaining_ms(deadline)):
                raise TimeoutError(
                    f"no acknowledgement from {self.endpoint} for {wait_ms} ms with {len(self._waiting)} "
                    f"batches waiting (the window): is the daemon running, and is this its "
                    f"input.acked_endpoint? ({self.report})")
        ticket = self._next_ticket
        send_within(self._socket, [struct.pack("<Q", ticket), message], _remaining_ms(deadline),
                    f"a message to {self.endpoint}")
        self._next_ticket += 1
        self._waiting[ticket] = None
        self.report.sent += 1
        return ticket

    def flush(self, timeout_ms: int | None = None) -> "DeliveryReport":
        """Wait until every batch sent is answered, or timeout_ms (default ack_timeout_ms) passes."""
        if self.acknowledged and not self._closed:
            deadline = time.monotonic() + (self.ack_timeout_ms if timeout_ms is None else timeout_ms) / 1000
            while self._waiting and self._take_replies(_remaining_ms(deadline)):
                pass
        return self.report

    def _take_replies(self, timeout_ms: int) -> bool:
        """Read the replies that arrive within timeout_ms (then any already queued); False if none did."""
        if not self._socket.poll(timeout_ms, zmq.POLLIN):
            return False
        while True:
            frames = self._socket.recv_multipart()
            self._record(frames)
            if not self._socket.poll(0, zmq.POLLIN):
                return True

    def _record(self, frames: list[bytes]) -> None:
        if len(frames) != 2 or len(frames[0]) != 8:
            raise ProtocolError(f"{self.endpoint} answered with {len(frames)} frames, not [ticket, JSON]: "
                                "is it a noised input.acked_endpoint?")
        (ticket,) = struct.unpack("<Q", frames[0])
        try:
            reply = json.loads(frames[1])
            status = reply["status"]
        except (ValueError, KeyError, TypeError) as error:
            raise ProtocolError(f"{self.endpoint} answered ticket {ticket} with {frames[1][:200]!r}: {error}")
        if ticket not in self._waiting:
            raise ProtocolError(f"{self.endpoint} answered ticket {ticket}, which is not waiting for an answer")
        # Answers come in send order: tickets passed over were lost with a daemon that restarted.
        for older in list(self._waiting):
            if older == ticket:
                break
            del self._waiting[older]
            self.report.unacknowledged.append(older)
        del self._waiting[ticket]
        if status == "ok":
            self.report.acknowledged += 1
            self.report.last_seq = reply.get("seq")
        elif status == "rejected":
            self.report.rejected.append(Rejection(ticket, reply.get("reason", ""), reply.get("detail", "")))
        elif status == "unsent":
            self.report.unsent.append(ticket)
        else:
            raise ProtocolError(f"{self.endpoint} answered ticket {ticket} with unknown status {status!r}")

    def close(self, *, check: bool = True) -> None:
        """Wait for the answers (acknowledged) and close; raises DeliveryError if check and any batch
        was not acknowledged. Plain, queued batches get linger_ms to leave."""
        if self._closed:
            return
        if not self.acknowledged:
            self._closed = True
            self._socket.close(linger=self._linger_ms)
            return
        self.flush()
        self._closed = True
        self.report.unacknowledged.extend(self._waiting)
        self._waiting.clear()
        self._socket.close(linger=0)
        if check and not self.report.delivered:
            raise DeliveryError(self.endpoint, self.report)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        # An exception already on its way out is the one to see; the report stays on .report.
        self.close(check=exc_type is None)


def _remaining_ms(deadline: float) -> int:
    return max(0, int((deadline - time.monotonic()) * 1000))


@dataclass(frozen=True)
class Rejection:
    """A batch the daemon refused: its ticket, the reject reason label and the daemon's detail."""

    ticket: int
    reason: str
    detail: str


@dataclass
class DeliveryReport:
    """What became of the batches an acknowledged Producer sent."""

    sent: int = 0
    acknowledged: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    unsent: list[int] = field(default_factory=list)
    """Tickets the daemon took but could not queue before it stopped: send them again."""
    unacknowledged: list[int] = field(default_factory=list)
    """Tickets with no answer when the producer closed: the daemon may or may not have them."""
    last_seq: int | None = None

    @property
    def delivered(self) -> bool:
        return self.acknowledged == self.sent

    def __str__(self) -> str:
        return (f"{self.sent} sent: {self.acknowledged} acknowledged, {len(self.rejected)} rejected, "
                f"{len(self.unsent)} unsent, {len(self.unacknowledged)} unacknowledged")


class DeliveryError(RuntimeError):
    """Not every batch was acknowledged; ``report`` says what became of each."""

    def __init__(self, endpoint: str, report: DeliveryReport):
        reasons = sorted({rejection.reason for rejection in report.rejected})
        because = f" (rejected as {', '.join(reasons)})" if reasons else ""
        super().__init__(f"{endpoint}: {report}{because}")
        self.report = report
