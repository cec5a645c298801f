"""End-to-end: one input stream feeding several outputs (`outputs`, `fanout: copy | split`), each
with its own endpoint, σ range, step counter and noise ids, over real sockets."""

import signal

import numpy as np
import pytest

from noised_client import ClientKeys, Consumer, Producer, Reporter, reference
from tests.exchange import SEND_TIMEOUT_MS, assert_nothing_more, receive
from tests.harness import run_cli, write_config
from tests.test_operations import parse_prometheus, scrape

SHAPE = (3, 4, 5, 6)
SEED = 77
OUTPUT_BIT = 60  # output k's noise ids are the input's ^ (k << 60)


def uniform(sigma_min, sigma_max):
    return {"sigma_min": sigma_min, "sigma_max": sigma_max,
            "curriculum": [{"at_step": 0, "distribution": "uniform"}]}


def outputs_config(sockets, fanout, outputs, **extra):
    return {"seed": SEED, "fanout": fanout, "output": {"dtype": "f32", "include_clean": True},
            "outputs": [{"endpoint": f"ipc://{sockets}/{entry['name']}.sock", **entry} for entry in outputs], **extra}


def batches(count, first=0):
    rng = np.random.default_rng(first)
    return [{"latents": rng.standard_normal(SHAPE).astype(np.float32),
             "noise_id": np.arange((first + i) * SHAPE[0], (first + i + 1) * SHAPE[0], dtype=np.uint64)}
            for i in range(count)]


def send_acked(noised, inputs):
    with Producer(noised.acked_endpoint, ack_timeout_ms=SEND_TIMEOUT_MS) as producer:
        for batch in inputs:
            producer.send(batch, timeout_ms=SEND_TIMEOUT_MS)
        producer.flush()
        assert producer.report.delivered, producer.report
        assert producer.report.acknowledged == len(inputs), producer.report


def which_input(got, inputs):
    """The index of the input batch this output carries, found by its clean latents."""
    matches = [i for i, sent in enumerate(inputs) if np.array_equal(got["z_0"], sent["latents"])]
    assert len(matches) == 1, matches
    return matches[0]


def check_noised(got, sent, index, sigma_range):
    """The output's ids are the input's with the output's index folded in; ε, σ range and z_t follow."""
    ids = reference.output_noise_ids(sent["noise_id"], index)
    np.testing.assert_array_equal(ids, sent["noise_id"] ^ np.uint64(index << OUTPUT_BIT))
    np.testing.assert_array_equal(got["noise_id"], ids)
    low, high = sigma_range
    assert np.all((got["sigma"] >= low) & (got["sigma"] <= high)), (got["sigma"], sigma_range)
    elements = int(np.prod(SHAPE[1:]))
    eps = reference.noise_batch(SEED, ids, elements).reshape(SHAPE)
    np.testing.assert_allclose(got["eps"], eps, rtol=0, atol=5e-6)
    sigma = reference.uniform_sigma(reference.sigma_uniforms(SEED, ids)[0], low, high)
    np.testing.assert_allclose(got["sigma"], sigma, rtol=0, atol=1e-6)
    # One rounding of the exact blend: within an f32 ulp or two.
    s = got["sigma"].astype(np.float64).reshape(-1, *[1] * (len(SHAPE) - 1))
    z0, e = sent["latents"].astype(np.float64), got["eps"].astype(np.float64)
    exact = (1 - s) * z0 + s * e
    np.testing.assert_array_less(np.abs(got["z_t"] - exact), 2.0**-22 * ((1 - s) * np.abs(z0) + s * np.abs(e) + np.abs(exact)) + 1e-30)


def test_copy_gives_every_batch_to_every_output_with_its_own_sigma_range_step_and_noise(daemon, sockets):
    ranges = {"high": (0.875, 1.0), "low": (0.0, 0.875)}
    noised = daemon(outputs_config(sockets, "copy", [
        {"name": "high", "schedule": uniform(*ranges["high"])},
        {"name": "low", "schedule": uniform(*ranges["low"]), "steps": {"batches_per_step": 2}},
    ]))
    inputs = batches(6)
    with Consumer(f"ipc://{sockets}/high.sock") as high, Consumer(f"ipc://{sockets}/low.sock") as low:
        send_acked(noised, inputs)
        got = {"high": receive(high, len(inputs)), "low": receive(low, len(inputs))}
        assert_nothing_more(high)
        assert_nothing_more(low)
    for index, name in enumerate(["high", "low"]):
        seen = [which_input(batch, inputs) for batch in got[name]]
        assert seen == list(range(len(inputs))), (name, seen)
        for position, batch in enumerate(got[name]):
            assert batch.output == name
            assert int(batch.metadata["noised.seq"]) == position
            assert int(batch.metadata["noised.step"]) == (position if name == "high" else position // 2)
            check_noised(batch, inputs[position], index, ranges[name])
    # Two experts never see one ε.
    assert not np.array_equal(got["high"][0]["eps"], got["low"][0]["eps"])
    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr


def test_split_gives_each_batch_to_one_output_by_weight(daemon, sockets):
    ranges = {"a": (0.0, 0.5), "b": (0.5, 1.0)}
    noised = daemon(outputs_config(sockets, "split", [
        {"name": "a", "weight": 3, "schedule": uniform(*ranges["a"])},
        {"name": "b", "weight": 1, "schedule": uniform(*ranges["b"])},
    ]))
    inputs = batches(8)
    with Consumer(f"ipc://{sockets}/a.sock") as a, Consumer(f"ipc://{sockets}/b.sock") as b:
        send_acked(noised, inputs)
        got = {"a": receive(a, 6), "b": receive(b, 2)}
        assert_nothing_more(a)
        assert_nothing_more(b)
    seen = {name: [which_input(batch, inputs) for batch in got[name]] for name in got}
    # Smooth weighted round robin, 3:1: a, a, b, a, then again.
    assert seen == {"a": [0, 1, 3, 4, 5, 7], "b": [2, 6]}, seen
    for index, name in enumerate(["a", "b"]):
        for position, batch in enumerate(got[name]):
            assert int(batch.metadata["noised.step"]) == position
            check_noised(batch, inputs[seen[name][position]], index, ranges[name])


def test_copy_drops_a_gone_outputs_copies_and_counts_them(daemon, sockets):
    noised = daemon(outputs_config(sockets, "copy", [
        {"name": "main", "schedule": uniform(0, 1)},
        {"name": "sweep", "schedule": uniform(0, 1), "when_full": "drop", "high_water_mark": 1},
    ], metrics={"listen": "127.0.0.1:0"}))
    port = int(noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")["metrics"].rsplit(":", 1)[1])
    inputs = batches(12)
    # Nobody takes sweep's batches: its queue fills, and main still gets every batch.
    with Consumer(f"ipc://{sockets}/main.sock") as main:
        send_acked(noised, inputs)
        got = receive(main, len(inputs))
    assert [which_input(batch, inputs) for batch in got] == list(range(len(inputs)))
    status, text = scrape(port)
    assert status == 200
    samples = parse_prometheus(text)
    dropped = samples['noised_fanout_copies_total{output="sweep",result="dropped"}']
    forwarded = samples['noised_fanout_copies_total{output="sweep",result="forwarded"}']
    assert dropped > 0 and dropped + forwarded == len(inputs), samples
    assert samples['noised_fanout_copies_total{output="main",result="forwarded"}'] == len(inputs)
    assert samples['noised_batches_sent_total{output="main"}'] == len(inputs)


def test_copy_blocks_on_a_full_output_and_loses_nothing_once_it_returns(daemon, sockets):
    noised = daemon(outputs_config(sockets, "copy", [
        {"name": "main", "schedule": uniform(0, 1)},
        {"name": "slow", "schedule": uniform(0, 1), "high_water_mark": 1},
    ]))
    inputs = batches(16)
    with Consumer(f"ipc://{sockets}/main.sock") as main:
        with Producer(noised.acked_endpoint, ack_timeout_ms=SEND_TIMEOUT_MS, window=len(inputs)) as producer:
            for batch in inputs:
                producer.send(batch, timeout_ms=SEND_TIMEOUT_MS)
            # slow has no trainer: once its queue is full, main is held back too.
            held = []
            while (batch := main.recv(timeout_ms=1500)) is not None and len(held) < len(inputs):
                held.append(batch)
            assert len(held) < len(inputs), "main got everything while slow's queue was full"
            assert producer.unacknowledged > 0
            with Consumer(f"ipc://{sockets}/slow.sock") as slow:
                rest = receive(main, len(inputs) - len(held))
                slow_got = receive(slow, len(inputs))
                producer.flush()
        assert producer.report.acknowledged == len(inputs), producer.report
    assert [which_input(batch, inputs) for batch in held + rest] == list(range(len(inputs)))
    assert [which_input(batch, inputs) for batch in slow_got] == list(range(len(inputs)))


def fixed(sigma):
    return uniform(sigma, sigma)


def one_batch_each(noised, consumers, first):
    send_acked(noised, batches(1, first=first))
    return [receive(consumer, 1)[0] for consumer in consumers]


def test_reload_changes_one_outputs_schedule_and_refuses_another_list(daemon, sockets):
    entries = [{"name": "a", "schedule": fixed(0.25)}, {"name": "b", "schedule": fixed(0.75)}]
    config = outputs_config(sockets, "copy", entries)
    noised = daemon(config)
    with Consumer(f"ipc://{sockets}/a.sock") as a, Consumer(f"ipc://{sockets}/b.sock") as b:
        got = one_batch_each(noised, [a, b], 0)
        assert [float(batch["sigma"][0]) for batch in got] == [0.25, 0.75]
        changed = outputs_config(sockets, "copy", [{"name": "a", "schedule": fixed(0.5)}, entries[1]])
        noised.rewrite_config({"outputs": changed["outputs"]})
        noised.send_signal(signal.SIGHUP)
        reloaded = noised.wait_for_log(lambda f: f.get("msg") == "reloaded" and f.get("output_name") == "a", 10, "a reloaded")
        assert reloaded["changed"].startswith("schedule"), reloaded
        got = one_batch_each(noised, [a, b], 1)
        assert [float(batch["sigma"][0]) for batch in got] == [0.5, 0.75]
        # Outputs are added, removed or renamed only by a restart; the running ones go on.
        renamed = outputs_config(sockets, "copy", [{"name": "c", "schedule": fixed(0.1)}, entries[1]])
        noised.rewrite_config({"outputs": renamed["outputs"]})
        noised.send_signal(signal.SIGHUP)
        failed = noised.wait_for_log(lambda f: f.get("msg", "").startswith("reload failed"), 10, "reload failed")
        assert "changes only with a restart" in failed["error"], failed
        got = one_batch_each(noised, [a, b], 2)
        assert [float(batch["sigma"][0]) for batch in got] == [0.5, 0.75]
    assert noised.stop().returncode == 0


def test_each_output_keeps_its_own_state_across_a_restart(daemon, sockets, tmp_path):
    state = tmp_path / "state"
    noised = daemon(outputs_config(sockets, "split", [
        {"name": "a", "weight": 2, "schedule": fixed(0.25)}, {"name": "b", "schedule": fixed(0.75)}],
        state_dir=str(state)))
    plain = {key: value for key, value in batches(1)[0].items() if key != "noise_id"}
    with Consumer(f"ipc://{sockets}/a.sock") as a, Consumer(f"ipc://{sockets}/b.sock") as b:
        send_acked(noised, [plain] * 3)
        first = receive(a, 2) + receive(b, 1)
        assert noised.stop().returncode == 0
        assert sorted(path.name for path in state.iterdir()) == ["a", "b"]
        assert (state / "a" / "state.json").is_file() and (state / "b" / "state.json").is_file()
        noised.start()
        send_acked(noised, [plain] * 3)
        second = receive(a, 2) + receive(b, 1)
    seqs = lambda got: [int(batch.metadata["noised.seq"]) for batch in got]
    assert seqs(first) == [0, 1, 0] and seqs(second) == [2, 3, 1]
    # Default ids count per output from its own state, and output b's carry its index.
    ids = lambda batch: [int(i) for i in batch["noise_id"]]
    assert ids(first[0]) == [0, 1, 2] and ids(second[0]) == [6, 7, 8]
    assert ids(first[2]) == [(1 << OUTPUT_BIT) | i for i in (0, 1, 2)]
    assert ids(second[2]) == [(1 << OUTPUT_BIT) | i for i in (3, 4, 5)]


def test_a_trainers_feedback_moves_only_its_outputs_step(daemon, sockets):
    noised = daemon(outputs_config(sockets, "copy", [
        {"name": "a", "schedule": uniform(0, 1)},
        {"name": "b", "schedule": uniform(0, 1), "steps": {"source": "feedback"},
         "feedback": {"endpoint": f"ipc://{sockets}/b-feedback.sock"}},
    ]))
    with Consumer(f"ipc://{sockets}/a.sock") as a, Consumer(f"ipc://{sockets}/b.sock") as b, \
            Reporter(f"ipc://{sockets}/b-feedback.sock") as reporter:
        got = one_batch_each(noised, [a, b], 0)
        assert [int(batch.metadata["noised.step"]) for batch in got] == [0, 0]
        reporter.report(500, timeout_ms=SEND_TIMEOUT_MS)
        for attempt in range(50):
            got = one_batch_each(noised, [a, b], 1 + attempt)
            if int(got[1].metadata["noised.step"]) == 500:
                break
        else:
            pytest.fail("output b never took its trainers' step 500")
        assert int(got[0].metadata["noised.step"]) == 1 + attempt


def test_an_output_that_cannot_bind_fails_the_start_naming_it(noised_bin, tmp_path, sockets):
    # 192.0.2.0/24 is TEST-NET-1: never an address of this machine, so the bind fails at once.
    config = {"state_dir": None, "metrics": {"listen": None},
              "input": {"endpoint": f"ipc://{sockets}/in.sock", "acked_endpoint": f"ipc://{sockets}/acked.sock"},
              "outputs": [{"name": "a", "endpoint": f"ipc://{sockets}/a.sock"},
                          {"name": "b", "endpoint": "tcp://192.0.2.1:5000"}]}
    path = write_config(tmp_path / "bad.yaml", config)
    finished = run_cli(noised_bin, "run", "--config", str(path))
    assert finished.returncode != 0
    assert "outputs[1].endpoint tcp://192.0.2.1:5000: cannot bind" in finished.stderr, finished.stderr


def test_plain_producers_feed_the_outputs_and_sigterm_drains_them(daemon, sockets):
    noised = daemon(outputs_config(sockets, "copy", [{"name": "a"}, {"name": "b"}]))
    inputs = batches(5)
    with Consumer(f"ipc://{sockets}/a.sock") as a, Consumer(f"ipc://{sockets}/b.sock") as b:
        with Producer(noised.input_endpoint, acknowledged=False) as producer:
            for batch in inputs:
                producer.send(batch, timeout_ms=SEND_TIMEOUT_MS)
        got = {"a": receive(a, len(inputs)), "b": receive(b, len(inputs))}
        stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    for name in got:
        assert [which_input(batch, inputs) for batch in got[name]] == list(range(len(inputs)))
    stops = [f for f in noised.log_records() if f.get("msg") == "stopped"]
    assert sorted(f["output_name"] for f in stops) == ["a", "b"]
    assert all(int(f["sent"]) == len(inputs) and int(f["undelivered"]) == 0 for f in stops), stops


def test_curve_guards_every_output_and_the_input_with_outputs(daemon, noised_bin, tmp_path, sockets):
    keys, authorized = tmp_path / "keys", tmp_path / "authorized"
    keys.mkdir()
    authorized.mkdir()
    for name in ("server", "trainer", "stranger"):
        assert run_cli(noised_bin, "keygen", name, "--dir", str(keys)).returncode == 0
    (authorized / "trainer.pub").write_text((keys / "trainer.pub").read_text())
    noised = daemon(outputs_config(sockets, "copy", [{"name": "a"}, {"name": "b"}], security={"curve": {
        "secret_key_file": str(keys / "server.key"), "authorized_keys_dir": str(authorized)}}))
    server_key = (keys / "server.pub").read_text().strip()
    trainer, stranger = ClientKeys.load(keys / "trainer"), ClientKeys.load(keys / "stranger")
    with Consumer(f"ipc://{sockets}/a.sock", curve_server_key=server_key, keys=trainer) as a, \
            Consumer(f"ipc://{sockets}/b.sock", curve_server_key=server_key, keys=stranger) as b_stranger:
        with Producer(noised.acked_endpoint, curve_server_key=server_key, keys=trainer,
                      ack_timeout_ms=SEND_TIMEOUT_MS) as producer:
            producer.send(batches(1)[0], timeout_ms=SEND_TIMEOUT_MS)
            assert receive(a, 1)[0].output == "a"
            assert b_stranger.recv(timeout_ms=1000) is None, "a stranger's key must not get b's batches"
            with Consumer(f"ipc://{sockets}/b.sock", curve_server_key=server_key, keys=trainer) as b:
                assert receive(b, 1)[0].output == "b"
            producer.flush()
            assert producer.report.acknowledged == 1, producer.report
    assert any(f.get("msg") == "refused a client" for f in noised.log_records())
    assert noised.stop().returncode == 0
