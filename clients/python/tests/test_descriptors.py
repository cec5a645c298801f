"""End-to-end: descriptor limits. Floods of idle connections at systemd's default soft limit leave
the data path serving, and a metrics port already taken is named in the error."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import struct
import time
import urllib.error
import urllib.request

import pytest

from tests import messages
from noised_client import Consumer, Producer
from tests.exchange import RECV_TIMEOUT_MS, SEND_TIMEOUT_MS, receive
from tests.harness import default_config, run_cli, socket_dir, write_config

# systemd's default soft limit (and, in the first test, the hard one too).
DEFAULT_SOFT_LIMIT = 1024
FLOOD = 1100  # more connections than the default limit allows descriptors
METRICS_CAP = 64  # the metrics listener's connection cap at a limit of 1024
CONNECT_TIMEOUT_S = 5.0
FLOOD_DEADLINE_S = 60.0


@pytest.fixture(autouse=True)
def enough_descriptors_for_the_test():
    """This process holds every flood connection: give it room for them (and restore the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * FLOOD + 256
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"the test process may open only {hard} descriptors; the floods need {wanted}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def metrics_port(noised) -> int:
    ready = noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")
    return int(ready["metrics"].rsplit(":", 1)[1])


def open_descriptors(noised) -> int:
    return len(os.listdir(f"/proc/{noised.pid}/fd"))


def get(port: int, path: str) -> tuple[int, str] | None:
    """One request; None when the connection is refused or closed without an answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout, OSError):
        return None


def get_eventually(port: int, path: str, seconds: float = 20) -> tuple[int, str]:
    """Retries while the metrics listener still holds its connections at the cap."""
    deadline = time.monotonic() + seconds
    while True:
        answer = get(port, path)
        if answer is not None:
            return answer
        assert time.monotonic() < deadline, f"GET {path} got no answer within {seconds} s"
        time.sleep(0.1)


def flood(connect, count: int) -> list[socket.socket]:
    """`count` connections opened by `connect` and kept idle. A refused or timed-out attempt (a full
    backlog) is tried again; bounded by 3 × count attempts and FLOOD_DEADLINE_S."""
    opened = []
    deadline = time.monotonic() + FLOOD_DEADLINE_S
    for _ in range(3 * count):
        if len(opened) == count or time.monotonic() > deadline:
            break
        with contextlib.suppress(OSError):
            opened.append(connect())
    return opened


def tcp_to(port: int):
    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT_S)
    return connect


def unix_to(endpoint: str):
    path = endpoint.removeprefix("ipc://")

    def connect() -> socket.socket:
        # Blocking, so a full backlog waits for libzmq to accept instead of failing with EAGAIN;
        # SO_SNDTIMEO bounds that wait.
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                              struct.pack("ll", int(CONNECT_TIMEOUT_S), 0))
        try:
            connection.connect(path)
        except OSError:
            connection.close()
            raise
        return connection
    return connect


def close_all(connections: list[socket.socket]) -> None:
    for connection in connections:
        connection.close()


def assert_serves(noised, consumer: Consumer, index: int) -> None:
    """A new producer connection gets its batch through to `consumer`, which stays open across
    probes: a consumer that has just closed can still be in the daemon's round-robin for a moment,
    and an output pushed to it would be lost."""
    with Producer(noised.input_endpoint, acknowledged=False) as producer:
        producer.send(messages.good_batch(index), {"probe": str(index)}, timeout_ms=SEND_TIMEOUT_MS)
        # Beside a thousand idle raw connections the daemon's I/O thread may be slow to take this one.
        (got,) = receive(consumer, 1, timeout_ms=2 * RECV_TIMEOUT_MS)
    assert got.metadata["probe"] == str(index)


def test_a_metrics_flood_at_the_default_limit_leaves_the_data_path_serving(daemon):
    # Soft and hard at 1024: nothing to raise, so only the connection cap protects the descriptors.
    noised = daemon({"metrics": {"listen": "127.0.0.1:0"}}, nofile=(DEFAULT_SOFT_LIMIT, DEFAULT_SOFT_LIMIT))
    port = metrics_port(noised)
    ready = noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")
    assert ready["descriptors"] == str(DEFAULT_SOFT_LIMIT), ready
    consumer = Consumer(noised.output_endpoint)
    before = open_descriptors(noised)
    connections = flood(tcp_to(port), FLOOD)
    assert len(connections) == FLOOD
    try:
        # The listener holds at most its cap (a few more may be closing as they are refused).
        assert open_descriptors(noised) <= before + METRICS_CAP + 4
        # Every ZeroMQ connection the data path makes now still gets a descriptor.
        assert_serves(noised, consumer, 0)
        assert_serves(noised, consumer, 1)
    finally:
        close_all(connections)
        consumer.close()
    status, text = get_eventually(port, "/metrics")
    assert status == 200
    refused = [line for line in text.splitlines() if line.startswith("noised_metrics_connections_refused_total ")]
    # Fewer than FLOOD - METRICS_CAP when idle connections timed out during the flood and freed places.
    assert refused and float(refused[0].split()[1]) > 0, refused
    assert get_eventually(port, "/healthz") == (200, "ok\n")
    assert noised.stop().returncode == 0


def test_idle_floods_on_metrics_and_the_ipc_input_leave_the_data_path_serving(daemon):
    # What systemd gives a unit without LimitNOFILE: soft 1024 under a higher hard limit. The daemon
    # raises its soft limit, so ZeroMQ's listeners have room for the raw ipc connections too.
    hard = 4 * DEFAULT_SOFT_LIMIT
    noised = daemon({"metrics": {"listen": "127.0.0.1:0"}}, nofile=(DEFAULT_SOFT_LIMIT, hard))
    port = metrics_port(noised)
    ready = noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")
    assert ready["descriptors"] == str(hard), ready
    consumer = Consumer(noised.output_endpoint)
    connections = flood(tcp_to(port), FLOOD)
    try:
        raw = flood(unix_to(noised.input_endpoint), FLOOD)
        connections += raw
        assert (len(connections), len(raw)) == (2 * FLOOD, FLOOD)
        assert_serves(noised, consumer, 0)
    finally:
        close_all(connections)
    try:
        assert get_eventually(port, "/healthz") == (200, "ok\n")
        assert_serves(noised, consumer, 1)
    finally:
        consumer.close()
    assert noised.stop().returncode == 0


def test_a_taken_metrics_port_is_named_with_its_key(noised_bin, tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        listen = f"127.0.0.1:{taken.getsockname()[1]}"
        config = default_config(tmp_path, socket_dir(tmp_path))
        config["metrics"] = {"listen": listen}
        path = write_config(tmp_path / "noised.yaml", config)
        result = run_cli(noised_bin, "run", "--config", str(path), timeout_s=30)
    assert result.returncode != 0
    assert f"metrics.listen {listen}: cannot bind: Address already in use" in result.stderr, result.stderr
