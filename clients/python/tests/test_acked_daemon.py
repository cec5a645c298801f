"""End-to-end: the daemon's side of the acknowledged input (docs/protocol.md), spoken with a raw DEALER.

The client side (noised_client.Producer, noised feed) has its own tests; these pin what the daemon
answers, whatever the producer.
"""

from __future__ import annotations

import json
import signal
import struct

import numpy as np
import zmq

from noised_client import Consumer, encode
from tests import messages
from tests.exchange import receive

REPLY_TIMEOUT_MS = 15_000


class RawDealer:
    """A DEALER on the daemon's acked endpoint; replies are read back as (ticket, status dict)."""

    def __init__(self, endpoint: str):
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.SNDTIMEO, REPLY_TIMEOUT_MS)  # a send that cannot go raises, never hangs
        self.socket.connect(endpoint)

    def send(self, ticket: int, batch: bytes) -> None:
        self.socket.send_multipart([struct.pack("<Q", ticket), batch])

    def send_frames(self, frames: list[bytes]) -> None:
        self.socket.send_multipart(frames)

    def reply(self, timeout_ms: int = REPLY_TIMEOUT_MS) -> tuple[bytes, dict] | None:
        if not self.socket.poll(timeout_ms, zmq.POLLIN):
            return None
        frames = self.socket.recv_multipart()
        assert len(frames) == 2, frames
        return frames[0], json.loads(frames[1])

    def replies(self, count: int) -> list[tuple[bytes, dict]]:
        got = []
        for _ in range(count):
            reply = self.reply()
            assert reply is not None, f"{len(got)} of {count} replies; then nothing for {REPLY_TIMEOUT_MS} ms"
            got.append(reply)
        return got

    def close(self) -> None:
        self.socket.close(linger=0)


def ticket(n: int) -> bytes:
    return struct.pack("<Q", n)


def test_each_batch_is_answered_with_the_seq_it_went_out_as_or_why_it_was_refused(daemon):
    noised = daemon()
    dealer = RawDealer(noised.config["input"]["acked_endpoint"])
    try:
        with Consumer(noised.output_endpoint) as consumer:
            dealer.send(7, encode(messages.good_batch(0), {"probe": "a"}))
            dealer.send(8, messages.MALFORMED[3].build())  # bad JSON header
            dealer.send(9, encode(messages.good_batch(1), {"probe": "b"}))
            replies = dealer.replies(3)
            outputs = receive(consumer, 2)
        assert [t for t, _ in replies] == [ticket(7), ticket(8), ticket(9)], "in order, each ticket echoed"
        (_, first), (_, refused), (_, last) = replies
        assert first == {"status": "ok", "seq": outputs[0].seq} and outputs[0].metadata["probe"] == "a"
        assert last == {"status": "ok", "seq": outputs[1].seq} and outputs[1].metadata["probe"] == "b"
        assert refused["status"] == "rejected" and refused["reason"] == "bad_header", refused
        assert refused["detail"], refused
    finally:
        dealer.close()
    stopped = noised.stop()
    assert (stopped.count("sent"), stopped.count("rejected")) == (2, 1), stopped.summary


def test_a_request_without_the_envelope_is_refused_as_bad_envelope(daemon):
    noised = daemon()
    dealer = RawDealer(noised.config["input"]["acked_endpoint"])
    batch = encode(messages.good_batch(0))
    try:
        dealer.send_frames([batch])                      # no ticket
        dealer.send_frames([b"short", batch])            # a 5-byte ticket
        dealer.send_frames([ticket(3), batch, b"more"])  # a third frame
        replies = dealer.replies(3)
        assert [t for t, _ in replies] == [b"", b"", ticket(3)], "the ticket comes back when it is one"
        for _, status in replies:
            assert status["status"] == "rejected" and status["reason"] == "bad_envelope", status
        assert "1 frame(s)" in replies[0][1]["detail"] and "3 frame(s)" in replies[2][1]["detail"], replies
        # The daemon serves on: a well-formed request after them is taken.
        with Consumer(noised.output_endpoint) as consumer:
            dealer.send(4, batch)
            assert dealer.replies(1)[0][1]["status"] == "ok"
            receive(consumer, 1)
    finally:
        dealer.close()
    assert noised.stop().count("rejected_bad_envelope") == 3


def test_no_trainer_means_no_reply_and_sigterm_answers_what_it_held_as_unsent(daemon):
    # One output message fits in the output queue; the next is held by the pipeline; the rest wait
    # in the acked socket. Nobody ever reads the output.
    noised = daemon({"output": {"high_water_mark": 1}, "shutdown": {"drain_seconds": 1}})
    dealer = RawDealer(noised.config["input"]["acked_endpoint"])
    try:
        for n in range(6):
            dealer.send(n, encode(messages.good_batch(n)))
        # Back-pressure: at most the batches the output socket took are answered.
        answered = []
        while (reply := dealer.reply(timeout_ms=1500)) is not None:
            answered.append(reply)
        assert len(answered) <= 2 and all(s["status"] == "ok" for _, s in answered), answered
        noised.send_signal(signal.SIGTERM)
        while (reply := dealer.reply(timeout_ms=5000)) is not None:
            answered.append(reply)
    finally:
        dealer.close()
    stopped = noised.stop()
    statuses = [s["status"] for _, s in answered]
    assert "unsent" in statuses, answered
    assert statuses.count("unsent") == stopped.count("undelivered"), (answered, stopped.summary)
    assert statuses.count("ok") == stopped.count("sent"), (answered, stopped.summary)
    assert len(set(t for t, _ in answered)) == len(answered), "each request answered at most once"
