"""Sending on a ZeroMQ socket within a time bound."""

from __future__ import annotations

import time
from typing import Sequence

import zmq


def send_within(socket: zmq.Socket, frames: Sequence[bytes], timeout_ms: int | None, what: str) -> None:
    """Queue `frames` as one message; raise TimeoutError (nothing sent) if that cannot happen within
    timeout_ms (None: wait as long as it takes).

    POLLOUT alone is not enough: the peer can go between the poll and the send (a CURVE handshake
    refused after the connection opened drops the pipe), and a blocking send would then wait
    forever. So the send does not block, and a refused one polls again until the deadline.
    """
    if timeout_ms is None:
        socket.send_multipart(frames, copy=False)
        return
    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        remaining = max(0, int((deadline - time.monotonic()) * 1000))
        if socket.poll(remaining, zmq.POLLOUT):
            try:
                socket.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
                return
            except zmq.Again:
                pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"could not queue {what} within {timeout_ms} ms")
        time.sleep(0.001)
