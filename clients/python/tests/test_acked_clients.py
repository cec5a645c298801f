"""End-to-end: the acknowledged clients (noised_client.Producer, noised feed) against the real daemon.

They must deliver every batch while the trainer is busy, over ipc (where a plain PUSH producer that
closes loses what is still queued, libzmq #4660) and tcp, and say honestly what they could not.
"""

from __future__ import annotations

import pytest

from noised_client import DeliveryError, Producer, encode
from tests import messages
from tests.harness import run_cli
from tests.test_faults import Collector, free_tcp_port

COUNT = 200
TOOL_TIMEOUT_S = 120


def acked_daemon(daemon, transport: str):
    overrides = {"output": {"high_water_mark": 2}, "input": {"high_water_mark": 4}}
    if transport == "tcp":
        overrides["input"]["acked_endpoint"] = f"tcp://127.0.0.1:{free_tcp_port()}"
    return daemon(overrides)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_the_producer_delivers_every_batch_while_the_trainer_is_busy(daemon, transport):
    noised = acked_daemon(daemon, transport)
    busy = Collector(noised.output_endpoint, pause_s=0.005)
    try:
        with Producer(noised.acked_endpoint, window=8) as producer:
            tickets = [producer.send(messages.good_batch(i, batch=2, shape=(64,)), {"probe": str(i)})
                       for i in range(COUNT)]
        # Leaving the block waited for every answer, and raised if any batch was not acknowledged.
        assert tickets == list(range(COUNT))
        report = producer.report
        assert (report.sent, report.acknowledged, report.rejected, report.unsent, report.unacknowledged) == \
            (COUNT, COUNT, [], [], []), str(report)
        busy.wait_for(COUNT)
    finally:
        busy.stop()
    assert sorted(int(b.metadata["probe"]) for b in busy.batches) == list(range(COUNT))
    assert report.last_seq == max(b.seq for b in busy.batches)


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_feed_delivers_every_batch_while_the_trainer_is_busy(daemon, noised_bin, transport):
    noised = acked_daemon(daemon, transport)
    busy = Collector(noised.output_endpoint, pause_s=0.005)
    try:
        fed = run_cli(noised_bin, "feed", "--endpoint", noised.acked_endpoint, "--shape", "2,4,8,8",
                      "--dtype", "f32", "--count", str(COUNT), "--window", "8", timeout_s=TOOL_TIMEOUT_S)
        assert fed.returncode == 0, f"stdout: {fed.stdout}\nstderr: {fed.stderr}"
        assert f"{COUNT} acknowledged, 0 rejected, 0 unsent, 0 unacknowledged" in fed.stdout, fed.stdout
        busy.wait_for(COUNT)
    finally:
        busy.stop()
    assert len(busy.batches) == COUNT and len({b.seq for b in busy.batches}) == COUNT


def test_a_producer_whose_daemon_is_gone_says_nothing_was_acknowledged(daemon):
    noised = daemon()
    endpoint = noised.acked_endpoint
    assert noised.stop().returncode == 0
    producer = Producer(endpoint, ack_timeout_ms=500)
    for i in range(3):
        producer.send(messages.good_batch(i))
    with pytest.raises(DeliveryError) as raised:
        producer.close()
    report = raised.value.report
    assert (report.sent, report.acknowledged, report.unacknowledged) == (3, 0, [0, 1, 2]), str(report)
    assert endpoint in str(raised.value) and "3 unacknowledged" in str(raised.value)


def test_a_full_window_with_no_answer_times_out_naming_the_endpoint(daemon):
    noised = daemon()
    endpoint = noised.acked_endpoint
    assert noised.stop().returncode == 0
    with pytest.raises(TimeoutError, match="input.acked_endpoint") as raised:
        with Producer(endpoint, window=2, ack_timeout_ms=300) as producer:
            for i in range(3):
                producer.send(messages.good_batch(i))
    assert endpoint in str(raised.value)
    assert producer.report.unacknowledged == [0, 1]


def test_feed_whose_daemon_is_gone_fails_and_reports_the_unacknowledged(daemon, noised_bin):
    noised = daemon()
    endpoint = noised.acked_endpoint
    assert noised.stop().returncode == 0
    fed = run_cli(noised_bin, "feed", "--endpoint", endpoint, "--shape", "2,8", "--dtype", "f32",
                  "--count", "5", "--ack-timeout", "0.5", timeout_s=TOOL_TIMEOUT_S)
    assert fed.returncode != 0, fed.stdout
    assert "5 batches" in fed.stdout and "0 acknowledged, 0 rejected, 0 unsent, 5 unacknowledged" in fed.stdout
    assert endpoint in fed.stderr, fed.stderr


def test_a_rejected_batch_is_reported_with_its_reason(daemon):
    noised = daemon()
    busy = Collector(noised.output_endpoint)
    try:
        with pytest.raises(DeliveryError, match="bad_header") as raised:
            with Producer(noised.acked_endpoint) as producer:
                producer.send(messages.good_batch(0))
                bad = producer.send_bytes(messages.MALFORMED[3].build())
                producer.send(messages.good_batch(1))
        report = raised.value.report
        assert report.acknowledged == 2 and [r.ticket for r in report.rejected] == [bad]
        assert report.rejected[0].reason == "bad_header" and report.rejected[0].detail
        busy.wait_for(2)
    finally:
        busy.stop()


def test_feed_counts_rejections_by_reason_and_fails(daemon, noised_bin, tmp_path):
    noised = daemon()
    folder = tmp_path / "batches"
    folder.mkdir()
    (folder / "a.safetensors").write_bytes(encode(messages.good_batch(0)))
    (folder / "b.safetensors").write_bytes(messages.MALFORMED[3].build())
    busy = Collector(noised.output_endpoint)
    try:
        fed = run_cli(noised_bin, "feed", "--endpoint", noised.acked_endpoint, "--dir", str(folder),
                      "--count", "4", timeout_s=TOOL_TIMEOUT_S)
        busy.wait_for(2)
    finally:
        busy.stop()
    assert fed.returncode != 0, fed.stdout
    assert "2 acknowledged, 2 rejected (bad_header=2), 0 unsent, 0 unacknowledged" in fed.stdout, fed.stdout
