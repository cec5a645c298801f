"""End-to-end: sigma follows the curriculum, keyframe by keyframe, as steps advance."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logit

from noised_client import reference
from tests.exchange import exchange

P_MIN = 1e-4
BATCHES_PER_STEP = 4
BATCH = 128
LATE_MEAN, LATE_STD = 1.0, 0.5
QUANTILE_TOLERANCE = 1e-5


def uniform_cdf(x):
    return np.clip(x, 0, 1)


def late_cdf(x):
    x = np.clip(np.asarray(x, np.float64), 1e-300, 1 - 1e-16)
    return stats.norm.cdf((logit(x) - LATE_MEAN) / LATE_STD)


@pytest.mark.parametrize("interpolation", ["linear", "hold"])
def test_sigma_follows_the_curriculum_between_keyframes(daemon, interpolation):
    seed = 4321
    noised = daemon({
        "seed": seed,
        "steps": {"batches_per_step": BATCHES_PER_STEP},
        "schedule": {
            "interpolation": interpolation,
            "curriculum": [
                {"at_step": 0, "distribution": "uniform"},
                {"at_step": 2, "distribution": "logit_normal", "mean": LATE_MEAN, "std": LATE_STD},
            ],
        },
    })
    inputs = [{"latents": np.full((BATCH, 4), i, np.float32)} for i in range(4 * BATCHES_PER_STEP)]
    outputs = sorted(exchange(noised, inputs), key=lambda got: got.seq)

    assert [got.seq for got in outputs] == list(range(len(inputs)))
    assert [got.step for got in outputs] == [seq // BATCHES_PER_STEP for seq in range(len(inputs))]

    def gather(steps):
        chosen = [got for got in outputs if got.step in steps]
        sigma = np.concatenate([got["sigma"] for got in chosen])
        u1, _ = reference.sigma_uniforms(seed, np.concatenate([got["noise_id"] for got in chosen]))
        return sigma, u1

    early, early_u = gather({0})
    np.testing.assert_array_equal(early, reference.uniform_sigma(early_u))
    assert stats.kstest(early, uniform_cdf).pvalue > P_MIN
    assert stats.kstest(early, late_cdf).pvalue < P_MIN

    late, late_u = gather({2, 3})
    np.testing.assert_allclose(late, reference.logit_normal_sigma(late_u, LATE_MEAN, LATE_STD),
                               rtol=0, atol=QUANTILE_TOLERANCE)
    assert stats.kstest(late, late_cdf).pvalue > P_MIN
    assert stats.kstest(late, uniform_cdf).pvalue < P_MIN

    middle, middle_u = gather({1})
    from_uniform = reference.uniform_sigma(middle_u).astype(np.float64)
    from_late = reference.logit_normal_sigma(middle_u, LATE_MEAN, LATE_STD).astype(np.float64)
    if interpolation == "hold":
        np.testing.assert_array_equal(middle, from_uniform)
    else:
        # Any blend of the two keyframes (of quantiles or of CDFs) lies between their quantiles.
        low, high = np.minimum(from_uniform, from_late), np.maximum(from_uniform, from_late)
        assert np.all(middle >= low - QUANTILE_TOLERANCE) and np.all(middle <= high + QUANTILE_TOLERANCE)
        assert np.mean(np.abs(middle - from_uniform)) > 0.01
        assert np.mean(np.abs(middle - from_late)) > 0.01


def _load_example(name):
    import yaml
    from pathlib import Path

    return yaml.safe_load((Path(__file__).resolve().parents[3] / "config" / "examples" / name).read_text())


def _flux_sigma(u, tokens):
    """Flux's shifted logit-normal σ for a batch of this many tokens (calculate_shift + time_shift)."""
    from scipy.special import expit, ndtri

    mu = 0.5 + (1.15 - 0.5) * (tokens - 256) / (4096 - 256)
    x = expit(ndtri(np.asarray(u, np.float64)))
    return np.exp(mu) / (np.exp(mu) + 1 / x - 1)


def test_packed_flux_latents_get_the_shift_of_their_token_count_and_the_daemon_says_so(daemon):
    seed = 99
    noised = daemon(merge_schedule(_load_example("flux-packed.yaml"), seed))
    shapes = [(2, 4096, 64), (2, 1024, 64), (2, 4096, 64)]
    outputs = sorted(exchange(noised, [{"latents": np.zeros(shape, np.float32)} for shape in shapes]),
                     key=lambda got: got.seq)
    for got, shape in zip(outputs, shapes):
        u1, _ = reference.sigma_uniforms(seed, got["noise_id"])
        np.testing.assert_allclose(got["sigma"], _flux_sigma(u1, shape[1]), rtol=0, atol=QUANTILE_TOLERANCE)
    assert noised.stop().returncode == 0  # every line it wrote is read
    logged = [record for record in noised.log_records() if record.get("msg") == "sequence-length shift"]
    assert [(r["shape"], r["tokens"], r["shift"]) for r in logged] == [
        ("2x4096x64", "4096", f"{np.exp(1.15):.3f}"),
        ("2x1024x64", "1024", f"{np.exp(0.5 + 0.65 * 768 / 3840):.3f}"),
    ], logged


def merge_schedule(example: dict, seed: int) -> dict:
    return {"seed": seed, "schedule": example["schedule"]}
