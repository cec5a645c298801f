"""End-to-end: batch coupling (`schedule.coupling`): which noise stream each sample gets, against
scipy's linear_sum_assignment, POT's Sinkhorn and the numpy reference, over real sockets."""

import numpy as np
import pytest
from scipy import stats

from noised_client import Consumer, Producer, coupling, reference
from tests.exchange import SEND_TIMEOUT_MS, exchange, receive
from tests.test_operations import parse_prometheus, scrape

P_MIN = 1e-4
SEED = 4242
SHAPE = (16, 4, 8, 8)
ELEMENTS = int(np.prod(SHAPE[1:]))


def coupling_config(method, workers=2, **options):
    return {"seed": SEED, "workers": workers, "output": {"dtype": "f32", "include_clean": True},
            "schedule": {"curriculum": [{"at_step": 0, "distribution": "uniform"}],
                         "coupling": {"method": method, **options}}}


def batches(count, shape=SHAPE, scale=1.0):
    rng = np.random.default_rng(7)
    return [{"latents": (scale * rng.standard_normal(shape)).astype(np.float32),
             "noise_id": np.arange(i * shape[0], (i + 1) * shape[0], dtype=np.uint64)}
            for i in range(count)]


def check_consistent(got, sent):
    """noise_id, eps and z_t agree: eps is the named streams' noise, σ each sample's own draw."""
    eps = reference.noise_batch(SEED, got["noise_id"], ELEMENTS).reshape(sent["latents"].shape)
    np.testing.assert_allclose(got["eps"], eps, rtol=0, atol=5e-6)
    sigma = reference.uniform_sigma(reference.sigma_uniforms(SEED, sent["noise_id"])[0])
    np.testing.assert_allclose(got["sigma"], sigma, rtol=0, atol=1e-6)
    s = got["sigma"].astype(np.float64).reshape(-1, 1, 1, 1)
    z0, e = sent["latents"].astype(np.float64), got["eps"].astype(np.float64)
    exact = (1 - s) * z0 + s * e
    np.testing.assert_array_less(np.abs(got["z_t"] - exact), 2.0**-22 * ((1 - s) * np.abs(z0) + s * np.abs(e) + np.abs(exact)) + 1e-30)


def test_assignment_is_scipys_and_never_costs_more_than_the_identity(daemon):
    noised = daemon(coupling_config("assignment"))
    inputs = batches(5)
    outputs = exchange(noised, inputs, lockstep=True)
    moved = 0
    for sent, got in zip(inputs, outputs):
        ids = sent["noise_id"]
        np.testing.assert_array_equal(got["noise_id"], coupling.couple("assignment", sent["latents"], SEED, ids))
        assert sorted(got["noise_id"]) == sorted(ids), "a permutation of the batch's own streams"
        cost = coupling.costs(sent["latents"], reference.noise_batch(SEED, ids, ELEMENTS))
        position = {int(i): k for k, i in enumerate(ids)}
        chosen = [position[int(i)] for i in got["noise_id"]]
        assert cost[np.arange(len(ids)), chosen].sum() <= np.trace(cost) + 1e-9 * np.trace(cost)
        moved += int(np.sum(got["noise_id"] != ids))
        check_consistent(got, sent)
    assert moved > 0, "the assignment never moved a stream: is it on?"


def test_sinkhorn_plan_is_pots_and_the_daemon_samples_from_it(daemon):
    ot = pytest.importorskip("ot")
    reg, iterations = 0.05, 100
    noised = daemon(coupling_config("sinkhorn", reg=reg, iterations=iterations))
    inputs = batches(3)
    outputs = exchange(noised, inputs, lockstep=True)
    for sent, got in zip(inputs, outputs):
        ids = sent["noise_id"]
        cost = coupling.costs(sent["latents"], reference.noise_batch(SEED, ids, ELEMENTS))
        plan = coupling.sinkhorn_plan(cost, reg, iterations)
        b = len(ids)
        pot = ot.sinkhorn(np.full(b, 1 / b), np.full(b, 1 / b), cost / cost.max(), reg, numItermax=iterations)
        np.testing.assert_allclose(plan, pot, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(plan.sum(0), 1 / b, rtol=1e-6)
        np.testing.assert_allclose(plan.sum(1), 1 / b, rtol=1e-3)
        np.testing.assert_array_equal(got["noise_id"], coupling.couple("sinkhorn", sent["latents"], SEED, ids,
                                                                        reg=reg, iterations=iterations))
        assert set(got["noise_id"]) <= set(ids)
        check_consistent(got, sent)


def test_knn_takes_the_nearest_of_each_samples_candidates(daemon):
    noised = daemon(coupling_config("knn", candidates=5))
    inputs = batches(3)
    outputs = exchange(noised, inputs, lockstep=True)
    for sent, got in zip(inputs, outputs):
        options = coupling.candidate_ids(sent["noise_id"], 5)
        for b in range(SHAPE[0]):
            cost = coupling.costs(sent["latents"][b:b + 1], reference.noise_batch(SEED, options[b], ELEMENTS))[0]
            assert got["noise_id"][b] == options[b][np.argmin(cost)]
        check_consistent(got, sent)


def test_the_choice_does_not_depend_on_the_worker_count(daemon):
    inputs = batches(2)
    methods = ("assignment", "sinkhorn", "knn")
    got = [exchange(daemon(coupling_config(method, workers=workers), name=f"{method}-{workers}"), inputs, lockstep=True)
           for method in methods for workers in (1, 3)]
    for one, three in zip(got[0::2], got[1::2]):
        for a, b in zip(one, three):
            np.testing.assert_array_equal(a["noise_id"], b["noise_id"])
            np.testing.assert_array_equal(a["z_t"].view(np.uint32), b["z_t"].view(np.uint32))


def test_coupled_noise_stays_standard_normal(daemon):
    # Latents far from the noise (scaled) make the assignment move most streams.
    noised = daemon(coupling_config("sinkhorn", reg=0.05))
    outputs = exchange(noised, batches(8, scale=3.0))
    eps = np.concatenate([got["eps"].ravel() for got in outputs]).astype(np.float64)
    assert abs(eps.mean()) < 5 / np.sqrt(eps.size) and abs(eps.var() - 1) < 5 * np.sqrt(2 / eps.size)
    assert stats.kstest(eps[::7], "norm").pvalue >= P_MIN


def test_a_batch_of_one_keeps_its_stream_and_too_large_a_batch_is_refused(daemon):
    noised = daemon(coupling_config("assignment", workers=1))
    one = {"latents": np.ones((1, 3), np.float32), "noise_id": np.array([99], np.uint64)}
    too_many = {"latents": np.ones((1025, 1), np.float32)}
    with Producer(noised.acked_endpoint, ack_timeout_ms=SEND_TIMEOUT_MS) as producer, Consumer(noised.output_endpoint) as consumer:
        producer.send(one, timeout_ms=SEND_TIMEOUT_MS)
        assert list(receive(consumer, 1)[0]["noise_id"]) == [99]
        producer.send(too_many, timeout_ms=SEND_TIMEOUT_MS)
        producer.flush()
        producer.close(check=False)
    [rejection] = producer.report.rejected
    assert rejection.reason == "batch_too_large" and "at most 1024" in rejection.detail, rejection


def test_metrics_show_the_cost_before_and_after(daemon):
    noised = daemon({**coupling_config("assignment"), "metrics": {"listen": "127.0.0.1:0"}})
    port = int(noised.wait_for_log(lambda f: f.get("msg") == "ready", 5, "ready")["metrics"].rsplit(":", 1)[1])
    exchange(noised, batches(1), lockstep=True)
    samples = parse_prometheus(scrape(port)[1])
    independent = samples['noised_coupling_cost{pairing="independent"}']
    coupled = samples['noised_coupling_cost{pairing="coupled"}']
    assert 0 < coupled < independent, samples


def test_frames_and_passthrough_are_untouched_by_the_coupling(daemon):
    frames, shape = 4, (8, 2, 4, 3, 5)
    config = coupling_config("assignment")
    config["schedule"]["frames"] = {"axis": 2, "mode": "independent", "condition": [{"weight": 1}, {"weight": 1, "first": 1}]}
    noised = daemon(config)
    rng = np.random.default_rng(11)
    sent = {"latents": (2 * rng.standard_normal(shape)).astype(np.float32),
            "noise_id": np.arange(100, 108, dtype=np.uint64), "caption_ids": np.arange(8 * 3, dtype=np.int32).reshape(8, 3)}
    [got] = exchange(noised, [sent], lockstep=True)
    np.testing.assert_array_equal(got["caption_ids"], sent["caption_ids"])
    np.testing.assert_array_equal(got["noise_id"], coupling.couple("assignment", sent["latents"], SEED, sent["noise_id"]))
    assert np.any(got["noise_id"] != sent["noise_id"])
    # σ per frame and the conditioning choice come from each sample's own id.
    sigma, mask = reference.frame_sigmas(SEED, sent["noise_id"], frames, reference.uniform_sigma,
                                         conditions=[(1, 0, 0), (1, 1, 0)])
    np.testing.assert_allclose(got["sigma"], sigma, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got["cond_mask"], mask)
    eps = reference.noise_batch(SEED, got["noise_id"], int(np.prod(shape[1:]))).reshape(shape)
    np.testing.assert_allclose(got["eps"], eps, rtol=0, atol=5e-6)
