"""End-to-end: systemd notifications and watchdog, SIGHUP reload, drain on SIGTERM, metrics, CURVE."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import zmq

from noised_client import ClientKeys, Consumer, Producer
from tests import messages
from tests.exchange import SEND_TIMEOUT_MS, Session, assert_nothing_more, receive
from tests.harness import run_cli

REPO = Path(__file__).resolve().parents[3]


class NotifySocket:
    """A bound datagram socket standing in for systemd's notify socket."""

    def __init__(self, address: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.address = address
        self.messages: list[str] = []
        self._seen = 0  # messages already matched by wait_for

    def collect(self, seconds: float) -> list[str]:
        """Every datagram that arrives within `seconds`, also kept in `messages`."""
        got = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                got.append(self.sock.recv(4096).decode())
            except socket.timeout:
                continue
        self.messages += got
        return got

    def wait_for(self, field: str, seconds: float = 10) -> str:
        """The first message after the last one matched that carries `field`."""
        deadline = time.monotonic() + seconds
        while True:
            for index in range(self._seen, len(self.messages)):
                if field in self.messages[index].split("\n"):
                    self._seen = index + 1
                    return self.messages[index]
            if time.monotonic() >= deadline:
                pytest.fail(f"no {field} within {seconds} s; got {self.messages}")
            self.collect(0.2)

    def close(self):
        self.sock.close()


def fields(message: str) -> list[str]:
    return [line.split("=", 1)[0] for line in message.split("\n") if line]


@pytest.mark.parametrize("form", ["path", "abstract"])
def test_sd_notify_messages_arrive_in_order(daemon, tmp_path, form):
    address = str(tmp_path / "notify.sock") if form == "path" else f"@noised-test-{tmp_path.name}"
    notify = NotifySocket(address)
    try:
        noised = daemon(env={"NOTIFY_SOCKET": address})
        notify.wait_for("READY=1")
        with Session(noised) as session:
            session.exchange([messages.good_batch(0)])
        noised.send_signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING=1")
        assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.M), reloading
        notify.wait_for("READY=1")
        stopped = noised.stop()
        assert stopped.returncode == 0, stopped.stderr
        notify.collect(0.5)
        order = [f for message in notify.messages for f in fields(message) if f in ("READY", "RELOADING", "STOPPING")]
        assert order == ["READY", "RELOADING", "READY", "STOPPING"], notify.messages
        assert any(f == "STATUS" for message in notify.messages for f in fields(message)), notify.messages
    finally:
        notify.close()


def constant_sigma(value: float) -> dict:
    return {"schedule": {"sigma_min": value, "sigma_max": value,
                         "curriculum": [{"at_step": 0, "distribution": "uniform"}]}}


def test_sighup_mid_stream_changes_sigma_without_losing_or_repeating_a_batch(daemon):
    noised = daemon(constant_sigma(0.25))
    total, sent = 120, []
    with Session(noised) as session:
        def produce():
            for i in range(total):
                session.send(messages.good_batch(i), {"probe": str(i)})
                sent.append(i)
                time.sleep(0.005)

        producer = threading.Thread(target=produce)
        producer.start()
        outputs = receive(session.consumer, 30)
        noised.rewrite_config(constant_sigma(0.75))
        noised.send_signal(signal.SIGHUP)
        noised.wait_for_log(lambda f: f.get("msg") == "reloaded", 10, "msg=reloaded")
        producer.join(timeout=60)
        outputs += receive(session.consumer, total - 30)
        assert_nothing_more(session.consumer)
    probes = [int(got.metadata["probe"]) for got in outputs]
    assert sorted(probes) == list(range(total)), "every batch exactly once"
    assert [got.seq for got in outputs] == list(range(total))
    sigmas = [float(s) for got in outputs for s in got["sigma"]]
    assert set(sigmas) == {np.float32(0.25), np.float32(0.75)}
    switch = sigmas.index(np.float32(0.75))
    assert 0 < switch and all(s == np.float32(0.75) for s in sigmas[switch:]), "the new schedule holds from one batch on"
    assert noised.stop().returncode == 0


def test_an_invalid_file_keeps_the_running_config(daemon):
    noised = daemon(constant_sigma(0.25))
    noised.rewrite_config({"workers": 0})
    noised.send_signal(signal.SIGHUP)
    failed = noised.wait_for_log(lambda f: f.get("msg", "").startswith("reload failed"), 10, "reload failed")
    assert "workers" in failed.get("error", ""), failed
    with Session(noised) as session:
        (got,) = session.exchange([messages.good_batch(0)])
    assert set(got["sigma"].tolist()) == {0.25}
    assert noised.stop().returncode == 0


def test_an_endpoint_change_rebinds(daemon, sockets):
    noised = daemon()
    with Session(noised) as session:
        session.exchange([messages.good_batch(0)])
    new_input, new_output = f"ipc://{sockets}/in-2.sock", f"ipc://{sockets}/out-2.sock"
    noised.rewrite_config({"input": {"endpoint": new_input}, "output": {"endpoint": new_output}})
    noised.send_signal(signal.SIGHUP)
    reloaded = noised.wait_for_log(lambda f: f.get("msg") == "reloaded", 10, "msg=reloaded")
    assert "input.endpoint" in reloaded["changed"] and "output.endpoint" in reloaded["changed"], reloaded
    with Producer(new_input, acknowledged=False) as producer, Consumer(new_output) as consumer:
        producer.send(messages.good_batch(1), {"probe": "moved"}, timeout_ms=SEND_TIMEOUT_MS)
        (got,) = receive(consumer, 1)
    assert got.metadata["probe"] == "moved" and got.seq == 1
    assert noised.stop().returncode == 0


def test_sigterm_with_queued_batches_delivers_them(daemon):
    noised = daemon({"output": {"high_water_mark": 1}, "input": {"high_water_mark": 64}})
    count = 12
    with Producer(noised.input_endpoint, acknowledged=False) as producer:
        for i in range(count):
            producer.send(messages.good_batch(i), {"probe": str(i)}, timeout_ms=SEND_TIMEOUT_MS)
        time.sleep(0.5)  # nobody consumes yet: batches wait in the daemon's queues
        noised.send_signal(signal.SIGTERM)
        with Consumer(noised.output_endpoint) as consumer:
            got = receive(consumer, count)
        stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert sorted(int(b.metadata["probe"]) for b in got) == list(range(count))
    assert (stopped.count("sent"), stopped.count("undelivered")) == (count, 0), stopped.summary


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$')


def parse_prometheus(text: str) -> dict[str, float]:
    """Strict enough: every line is a comment (HELP/TYPE) or `name{labels} value`."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not Prometheus text: {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_metrics_parse_and_count_what_was_sent(daemon):
    noised = daemon({"metrics": {"listen": "127.0.0.1:0"}})
    ready = noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")
    port = int(ready["metrics"].rsplit(":", 1)[1])
    # Operators see which kernel the CPU got.
    assert ready["kernel"] in ("avx2", "avx512", "avx512bf16", "portable"), ready
    good, bad = 5, [case for case in messages.MALFORMED if case.reason in ("truncated", "reserved_name")]
    with Session(noised) as session:
        for case in bad:
            session.producer.send_bytes(case.build(), timeout_ms=SEND_TIMEOUT_MS)
        session.exchange([messages.good_batch(i) for i in range(good)], lockstep=True)
    status, text = scrape(port)
    assert status == 200
    samples = parse_prometheus(text)
    assert samples["noised_batches_received_total"] == good + len(bad)
    assert samples["noised_batches_sent_total"] == good
    assert samples["noised_samples_sent_total"] == 2 * good
    assert samples['noised_rejected_batches_total{reason="truncated"}'] == 3
    assert samples['noised_rejected_batches_total{reason="reserved_name"}'] == 2
    assert samples["noised_sigma_count"] == 2 * good
    assert samples["noised_end_to_end_seconds_count"] == good
    assert samples["noised_step"] == good
    status, body = scrape(port, "/healthz")
    assert status == 200 and body.strip() == "ok", (status, body)
    assert noised.stop().returncode == 0


def test_curve_lets_in_authorized_clients_only(daemon, noised_bin, tmp_path):
    keys, authorized = tmp_path / "keys", tmp_path / "authorized"
    keys.mkdir()
    authorized.mkdir()
    for name in ("server", "trainer", "stranger"):
        assert run_cli(noised_bin, "keygen", name, "--dir", str(keys)).returncode == 0
    (authorized / "trainer.pub").write_text((keys / "trainer.pub").read_text())
    noised = daemon({"security": {"curve": {"secret_key_file": str(keys / "server.key"),
                                            "authorized_keys_dir": str(authorized)}}})
    server_key = (keys / "server.pub").read_text().strip()
    trainer = ClientKeys.load(keys / "trainer")
    stranger = ClientKeys.load(keys / "stranger")

    def client_kwargs(client):
        return {"curve_server_key": server_key, "keys": client} if client else {}

    for client, allowed in ((stranger, False), (None, False), (trainer, True)):
        with Producer(noised.input_endpoint, acknowledged=False, **client_kwargs(client)) as producer, \
                Consumer(noised.output_endpoint, **client_kwargs(client)) as consumer:
            try:
                producer.send(messages.good_batch(0), {"who": "x"}, timeout_ms=1000)
            except TimeoutError:
                assert not allowed
            got = consumer.recv(timeout_ms=3000 if allowed else 1500)
            assert (got is not None) == allowed, f"client {client} allowed={allowed}"
    stopped = noised.stop()
    assert stopped.returncode == 0
    assert any(f.get("msg") == "refused a client" for f in noised.log_records())


def test_refused_handshakes_are_logged_at_most_once_a_second(daemon, noised_bin, tmp_path):
    keys, authorized = tmp_path / "keys", tmp_path / "authorized"
    keys.mkdir()
    authorized.mkdir()
    for name in ("server", "stranger"):
        assert run_cli(noised_bin, "keygen", name, "--dir", str(keys)).returncode == 0
    noised = daemon({"metrics": {"listen": "127.0.0.1:0"},
                     "security": {"curve": {"secret_key_file": str(keys / "server.key"),
                                            "authorized_keys_dir": str(authorized)}}})
    port = int(noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")["metrics"].rsplit(":", 1)[1])
    stranger = ClientKeys.load(keys / "stranger")
    attempts = 40
    strangers = []
    try:
        for _ in range(attempts):  # one handshake each: libzmq does not retry a refused one
            socket = zmq.Context.instance().socket(zmq.PUSH)
            socket.linger = 0
            socket.curve_serverkey = (keys / "server.pub").read_text().strip().encode()
            socket.curve_publickey, socket.curve_secretkey = stranger.public_key.encode(), stranger.secret_key.encode()
            socket.connect(noised.input_endpoint)
            strangers.append(socket)
        deadline = time.monotonic() + 20
        while True:
            refused = parse_prometheus(scrape(port)[1]).get('noised_rejected_batches_total{reason="unauthorized"}', 0)
            if refused >= attempts:
                break
            assert time.monotonic() < deadline, f"only {refused} of {attempts} refusals within 20 s"
            time.sleep(0.05)
    finally:
        for socket in strangers:
            socket.close()
    # Every refusal is counted; the log rate-limits (its interval is tested on a manual clock in
    # LogTests), so a burst of refusals makes fewer lines, each saying how many it stands for.
    lines = [f for f in noised.log_records() if f.get("msg") == "refused a client"]
    logged = len(lines) + sum(int(f.get("suppressed", 0)) for f in lines)
    assert 1 <= len(lines) < attempts, f"{len(lines)} log lines for {refused:.0f} refusals"
    assert logged <= refused, f"the lines account for {logged} refusals, more than the {refused:.0f} counted"
    assert "stranger" not in lines[0]["detail"] and "not authorized" in lines[0]["detail"], lines[0]
    assert noised.stop().returncode == 0


def test_the_units_pass_verify_and_the_security_score(noised_bin):
    result = subprocess.run(["bash", str(REPO / "scripts" / "check-unit.sh"), str(noised_bin)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    for unit in ("noised.service", "noised@.service"):  # the plain unit and the template
        assert f"check-unit: {unit}: verify ok" in result.stdout, result.stdout
        assert f"check-unit: {unit}: security exposure" in result.stdout, result.stdout


def test_under_journald_lines_carry_syslog_priorities(noised_bin, tmp_path):
    """With JOURNAL_STREAM set (as systemd sets it), each line starts with <N> and leaves time to journald."""
    from tests.harness import default_config, socket_dir, write_config
    config = default_config(tmp_path, socket_dir(tmp_path))
    path = write_config(tmp_path / "noised.yaml", config)
    process = subprocess.Popen([str(noised_bin), "run", "--config", str(path)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={"JOURNAL_STREAM": "8:12345", "PATH": "/usr/bin:/bin"})
    try:
        first = process.stderr.readline()
        assert first.startswith("<6>level=info msg=ready "), first
        assert "ts=" not in first
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(timeout=30) == 0
        assert all(re.match(r"^<[0-7]>level=", line) for line in rest.splitlines()), rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
