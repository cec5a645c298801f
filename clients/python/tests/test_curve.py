"""CURVE keys in the client: against a pyzmq CURVE server whose ZAP handler lets in listed keys."""

from __future__ import annotations

import os
import subprocess
import time
import threading

import numpy as np
import pytest
import zmq

from noised_client import ClientKeys, Consumer, Producer, encode, read_key_file
from tests.harness import socket_dir


def _keypair() -> tuple[str, str]:
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


def _write_keys(prefix, public: str, secret: str) -> None:
    (prefix.parent / (prefix.name + ".key")).write_text(secret + "\n")
    (prefix.parent / (prefix.name + ".pub")).write_text(public + "\n")


class ZapHandler:
    """ZAP 1.0 at inproc://zeromq.zap.01 of `context`: CURVE clients with an allowed key get 200."""

    def __init__(self, context: zmq.Context, allowed: set[str]):
        self.allowed = allowed
        self.denied = 0
        self._socket = context.socket(zmq.REP)
        self._socket.linger = 0
        self._socket.bind("inproc://zeromq.zap.01")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            if not self._socket.poll(50):
                continue
            version, request_id, _domain, _address, _identity, mechanism, *credentials = self._socket.recv_multipart()
            key = zmq.utils.z85.encode(credentials[0]).decode("ascii") if mechanism == b"CURVE" else None
            if key in self.allowed:
                self._socket.send_multipart([version, request_id, b"200", b"OK", key.encode(), b""])
            else:
                self.denied += 1
                self._socket.send_multipart([version, request_id, b"400", b"not authorized", b"", b""])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture
def server(tmp_path):
    """A context with a ZAP handler, the server's keypair, and a factory of CURVE server sockets."""
    context = zmq.Context()
    public, secret = _keypair()
    client_public, client_secret = _keypair()
    zap = ZapHandler(context, {client_public})
    sockets = []
    directory = socket_dir(tmp_path)

    def bind(socket_type: int, name: str):
        socket = context.socket(socket_type)
        socket.linger = 0
        socket.curve_server = True
        socket.curve_secretkey = secret.encode()
        socket.zap_domain = b"noised"
        endpoint = f"ipc://{directory}/{name}.sock"
        socket.bind(endpoint)
        sockets.append(socket)
        return socket, endpoint

    yield {"public": public, "bind": bind, "zap": zap, "client": ClientKeys(client_public, client_secret)}
    for socket in sockets:
        socket.close()
    zap.close()
    context.term()


def test_producer_with_keys_reaches_a_curve_server(server):
    pull, endpoint = server["bind"](zmq.PULL, "in")
    with Producer(endpoint, acknowledged=False, curve_server_key=server["public"], keys=server["client"], linger_ms=0) as producer:
        producer.send({"latents": np.arange(6, dtype=np.float32)}, {"k": "v"}, timeout_ms=5000)
        assert pull.poll(5000), "an authorized producer's batch did not arrive"
        assert len(pull.recv()) > 0


def test_consumer_with_explicit_keys_receives_from_a_curve_server(server):
    push, endpoint = server["bind"](zmq.PUSH, "out")
    keys = server["client"]
    with Consumer(endpoint, curve_server_key=server["public"], curve_public_key=keys.public_key,
                  curve_secret_key=keys.secret_key) as consumer:
        push.send(encode({"z_t": np.ones(4, np.float32)}, {"noised.step": "3"}))
        batch = consumer.recv(timeout_ms=5000)
    assert batch is not None and batch.step == 3
    np.testing.assert_array_equal(batch["z_t"], np.ones(4, np.float32))


def test_unauthorized_and_plain_clients_get_nothing(server):
    pull, endpoint = server["bind"](zmq.PULL, "in")
    public, secret = _keypair()
    with Producer(endpoint, acknowledged=False, curve_server_key=server["public"], curve_secret_key=secret, linger_ms=0) as intruder, \
            Producer(endpoint, acknowledged=False, linger_ms=0) as plain:
        intruder.send({"x": np.zeros(1)}, timeout_ms=1000)  # queued on the connecting side, never delivered
        plain.send({"x": np.zeros(1)}, timeout_ms=1000)
        assert not pull.poll(500)
        # The intruder's handshake reaches the ZAP handler when the machine gets to it: wait, bounded.
        deadline = time.monotonic() + 10
        while server["zap"].denied < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert server["zap"].denied >= 1


def test_client_keys_load_the_files_noised_keygen_writes(tmp_path):
    noised = os.environ.get("NOISED_BIN")
    if noised:
        subprocess.run([noised, "keygen", "trainer", "--dir", str(tmp_path)], check=True, capture_output=True)
        assert (tmp_path / "trainer.key").stat().st_mode & 0o777 == 0o600
    else:
        _write_keys(tmp_path / "trainer", *_keypair())
    keys = ClientKeys.load(tmp_path / "trainer")
    assert keys.public_key == read_key_file(tmp_path / "trainer.pub")
    assert zmq.curve_public(keys.secret_key.encode()).decode() == keys.public_key


def test_bad_keys_are_named(tmp_path):
    public, secret = _keypair()
    other_public, _ = _keypair()
    _write_keys(tmp_path / "mixed", other_public, secret)
    with pytest.raises(ValueError, match=r"mixed\.pub is not the public key of .*mixed\.key"):
        ClientKeys.load(tmp_path / "mixed")
    (tmp_path / "short.pub").write_text("\n" + public[:-1] + "\n")
    with pytest.raises(ValueError, match=r"short\.pub:2: expected 40 Z85 characters, got 39"):
        read_key_file(tmp_path / "short.pub")
    with pytest.raises(ValueError, match=r"missing\.key: cannot read it"):
        ClientKeys.load(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"curve_server_key: '\"' at position 1 is not a Z85 character"):
        Consumer("ipc:///nonexistent", curve_server_key='"' + public[1:], keys=ClientKeys(public, secret))
    with pytest.raises(ValueError, match="curve_server_key: a 5-character group overflows 32 bits"):
        Producer("ipc:///nonexistent", curve_server_key="#####" + public[5:], curve_secret_key=secret)
    with pytest.raises(ValueError, match="needs curve_server_key"):
        Producer("ipc:///nonexistent", curve_secret_key=secret)
    with pytest.raises(ValueError, match="needs the client's curve_secret_key"):
        Producer("ipc:///nonexistent", curve_server_key=public)
    with pytest.raises(ValueError, match="does not belong"):
        Consumer("ipc:///nonexistent", curve_server_key=public, curve_public_key=other_public, curve_secret_key=secret)
