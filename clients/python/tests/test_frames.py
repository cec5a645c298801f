"""End-to-end: σ per frame (`schedule.frames`) and clean conditioning frames, against the numpy
reference from the seed and noise ids alone."""

import numpy as np
import pytest
from scipy import stats

from noised_client import Consumer, Producer, reference
from tests.exchange import as_f64, exchange, expand

P_MIN = 1e-4
SHAPE = (2, 3, 6, 5, 7)  # [B, C, T, H, W]: 6 frames of 35 elements, cutting kernel blocks
CONDITIONS = [(0.6, 0, 0), (0.3, 1, 0), (0.1, 1, 1)]


def frames_config(seed, **frames):
    return {"seed": seed, "output": {"dtype": "f32", "include_clean": True},
            "schedule": {"curriculum": [{"at_step": 0, "distribution": "uniform"}], "frames": {"axis": 2, **frames}}}


def batches(count, shape=SHAPE, first_id=0):
    rng = np.random.default_rng(first_id)
    return [{"latents": rng.standard_normal(shape).astype(np.float32),
             "noise_id": np.arange(first_id + i * shape[0], first_id + (i + 1) * shape[0], dtype=np.uint64)}
            for i in range(count)]


@pytest.mark.parametrize("mode,chunk", [("independent", 1), ("independent", 4), ("sorted", 2), ("same", 1)])
def test_sigma_per_frame_and_z_t_follow_the_reference(daemon, mode, chunk):
    seed = 31
    noised = daemon(frames_config(seed, mode=mode, chunk=chunk, condition=[
        {"weight": w, "first": f, "last": l} for w, f, l in CONDITIONS]))
    inputs = batches(3)
    outputs = exchange(noised, inputs, lockstep=True)
    frames = SHAPE[2]
    for sent, got in zip(inputs, outputs):
        ids = sent["noise_id"]
        np.testing.assert_array_equal(got["noise_id"], ids)
        sigma, mask = reference.frame_sigmas(seed, ids, frames, reference.uniform_sigma, mode=mode, chunk=chunk,
                                             conditions=CONDITIONS)
        assert got["sigma"].shape == (SHAPE[0], frames) and got["cond_mask"].shape == (SHAPE[0], frames)
        np.testing.assert_allclose(got["sigma"], sigma, rtol=0, atol=1e-6)
        np.testing.assert_array_equal(got["cond_mask"], mask)
        if mode == "sorted":
            for row, clean in zip(got["sigma"], got["cond_mask"]):
                noisy = row[~clean]
                assert np.all(np.diff(noisy) >= 0), row
        eps = reference.noise_batch(seed, ids, int(np.prod(SHAPE[1:]))).reshape(SHAPE)
        np.testing.assert_allclose(got["eps"], eps, rtol=0, atol=5e-6)
        # Each frame's σ over its elements ([B, 1, T, 1, 1]), f32 arithmetic: within a few f32 ulps.
        s = as_f64(got["sigma"])[:, None, :, None, None]
        z0 = as_f64(sent["latents"])
        exact = (1 - s) * z0 + s * as_f64(got["eps"])
        tolerance = 2.0**-22 * ((1 - s) * np.abs(z0) + s * np.abs(as_f64(got["eps"])) + np.abs(exact))
        np.testing.assert_array_less(np.abs(as_f64(got["z_t"]) - exact), tolerance + 1e-30)
        clean_frames = np.broadcast_to(got["cond_mask"][:, None, :, None, None], SHAPE)
        np.testing.assert_array_equal(got["z_t"][clean_frames].view(np.uint32), sent["latents"][clean_frames].view(np.uint32))


def test_marginals_and_condition_frequencies_match_their_laws(daemon):
    seed = 5
    noised = daemon(frames_config(seed) | {
        "schedule": {"curriculum": [{"at_step": 0, "distribution": "logit_normal", "mean": 0.5, "std": 0.8}],
                     "frames": {"axis": 1, "mode": "independent", "chunk": 2,
                                "condition": [{"weight": w, "first": f, "last": l} for w, f, l in CONDITIONS]}}})
    shape = (256, 6, 4)  # frames on axis 1
    outputs = exchange(noised, batches(8, shape), lockstep=False)
    sigma = np.concatenate([got["sigma"] for got in outputs])
    mask = np.concatenate([got["cond_mask"] for got in outputs])
    noisy = sigma[~mask].astype(np.float64)
    # logit(σ) ~ N(0.5, 0.8): the logits against the normal, and against the mean's sign flipped.
    logits = np.log(noisy) - np.log1p(-noisy)
    assert stats.kstest(logits, stats.norm(0.5, 0.8).cdf).pvalue > P_MIN
    assert stats.kstest(logits, stats.norm(-0.5, 0.8).cdf).pvalue < P_MIN
    # Chunks are independent draws: frames 0 and 2 of the same sample do not correlate.
    both = ~mask[:, 0] & ~mask[:, 2]
    assert abs(stats.spearmanr(sigma[both, 0], sigma[both, 2]).statistic) < 0.1
    # Which option each sample drew: none, first only, first and last.
    drawn = np.where(mask[:, -1], 2, np.where(mask[:, 0], 1, 0))
    counts = np.bincount(drawn, minlength=3)
    expected = np.array([w for w, _, _ in CONDITIONS]) * len(drawn)
    assert stats.chisquare(counts, expected).pvalue > P_MIN, counts
    assert stats.chisquare(counts, np.full(3, len(drawn) / 3)).pvalue < P_MIN


def test_sorted_frames_pool_to_the_curriculum_and_order_statistics_per_frame(daemon):
    seed = 12
    noised = daemon(frames_config(seed, mode="sorted"))
    shape = (512, 4, 3)  # [B, C, T]: 3 frames on axis 2
    outputs = exchange(noised, batches(2, shape), lockstep=False)
    sigma = np.concatenate([got["sigma"] for got in outputs]).astype(np.float64)
    assert sigma.shape == (1024, 3) and np.all(np.diff(sigma, axis=1) >= 0)
    # Pooled over frames the draws are the curriculum's (uniform); frame f holds the (f+1)-th
    # smallest of 3 uniforms, Beta(f + 1, 3 - f).
    assert stats.kstest(sigma.reshape(-1), "uniform").pvalue > P_MIN
    for frame in range(3):
        assert stats.kstest(sigma[:, frame], stats.beta(frame + 1, 3 - frame).cdf).pvalue > P_MIN
    assert stats.kstest(sigma[:, 0], "uniform").pvalue < P_MIN


def test_frames_do_not_depend_on_batch_composition(daemon):
    seed = 8
    config = frames_config(seed, mode="sorted", chunk=3, condition=[{"weight": 1}, {"weight": 1, "last": 2}])
    whole = exchange(daemon(config), batches(1, (6, 2, 7, 3))[:1], lockstep=True)[0]
    parts = exchange(daemon(config), [{"latents": whole["z_0"][i:i + 2], "noise_id": whole["noise_id"][i:i + 2]}
                                      for i in range(0, 6, 2)], lockstep=True)
    for name in ("sigma", "cond_mask", "z_t", "eps"):
        np.testing.assert_array_equal(np.concatenate([p[name] for p in parts]), whole[name], err_msg=name)


def test_latents_the_frames_cannot_apply_to_are_rejected_with_their_shape(daemon):
    noised = daemon(frames_config(1, condition=[{"weight": 1, "first": 2, "last": 2}]))
    with Consumer(noised.output_endpoint) as consumer, Producer(noised.acked_endpoint) as producer:
        producer.send({"latents": np.zeros((2, 4), np.float32)})
        producer.send({"latents": np.zeros((2, 3, 4, 5), np.float32)})
        producer.send({"latents": np.zeros((2, 3, 5, 5), np.float32)})
        report = producer.flush(30_000)
        producer.close(check=False)
        assert consumer.recv(timeout_ms=30_000)["sigma"].shape == (2, 5)
    assert report.acknowledged == 1 and [r.reason for r in report.rejected] == ["bad_frames", "bad_frames"], report
    assert "axis 2 is outside the latents' shape [2, 4]" in report.rejected[0].detail
    assert "have 4 frames on axis 2" in report.rejected[1].detail


def test_without_frames_sigma_stays_one_per_sample(daemon):
    noised = daemon({"seed": 3, "schedule": {"frames": {"axis": 2, "mode": "same"}}})
    got = exchange(noised, batches(1), lockstep=True)[0]
    assert got["sigma"].shape == (SHAPE[0],) and "cond_mask" not in got
    u1, _ = reference.sigma_uniforms(3, got["noise_id"])
    assert as_f64(got["sigma"]).shape == u1.shape
    assert expand(got["sigma"], got["z_t"]).shape == (SHAPE[0], 1, 1, 1, 1)


@pytest.mark.parametrize("frames", [None, {"axis": 2, "mode": "sorted", "chunk": 2}])
def test_stratified_sigma_is_reproduced_by_the_reference(daemon, frames):
    seed = 21
    config = {"seed": seed, "schedule": {"curriculum": [{"at_step": 0, "distribution": "uniform"}], "stratified": True}}
    if frames:
        config["schedule"]["frames"] = frames
    noised = daemon(config)
    inputs = batches(3, (16, 2, 5, 3))
    for sent, got in zip(inputs, exchange(noised, inputs, lockstep=True)):
        ids = sent["noise_id"]
        if frames:
            expected, _ = reference.frame_sigmas(seed, ids, 5, reference.uniform_sigma, mode="sorted", chunk=2,
                                                 stratified=True)
        else:
            u1, u2 = reference.sigma_uniforms(seed, ids)
            expected = reference.uniform_sigma(reference.stratify(u1, float(u2[0])))
        np.testing.assert_array_equal(got["sigma"], expected)
