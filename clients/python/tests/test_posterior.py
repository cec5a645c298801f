"""End-to-end: `input.posterior` samples z_0 from each message's mean and logvar, reproducibly,
then noises it; bad posteriors are refused with their own reasons while the daemon serves."""

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from noised_client import Consumer, Producer, reference
from tests.exchange import as_f64, exchange
from tests.harness import default_config, merge, run_cli, socket_dir, write_config

P_MIN = 1e-4
SHAPE = (2, 12, 3, 6, 10)  # Mochi-like [B, 12, T, H, W], small
DTYPES = {"f32": np.float32, "bf16": ml_dtypes.bfloat16, "f16": np.float16}


def posterior_config(seed):
    return {"seed": seed, "input": {"posterior": {"mean": "mean", "logvar": "logvar"}},
            "output": {"dtype": "f32", "include_clean": True}}


def posterior_batch(index, dtype=np.float32, shape=SHAPE):
    rng = np.random.default_rng(index)
    return {"mean": rng.standard_normal(shape).astype(dtype),
            "logvar": rng.uniform(-6, 1, shape).astype(dtype),
            "caption": np.arange(3, dtype=np.int32) + index}


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_z0_is_the_posterior_sample_of_the_reference_and_is_noised(daemon, dtype):
    seed = 4242
    noised = daemon(posterior_config(seed))
    inputs = [posterior_batch(i, DTYPES[dtype]) for i in range(3)]
    outputs = exchange(noised, inputs, lockstep=True)
    for sent, got in zip(inputs, outputs):
        assert "mean" not in got and "logvar" not in got
        np.testing.assert_array_equal(got["caption"], sent["caption"])
        expected = reference.posterior_z0(seed, got["noise_id"], sent["mean"], sent["logvar"])
        scale = np.abs(as_f64(sent["mean"])) + np.exp(as_f64(sent["logvar"]) / 2) * 6
        np.testing.assert_array_less(np.abs(as_f64(got["z_0"]) - expected), 1e-6 * scale)
        eps = reference.noise_batch(seed, got["noise_id"], int(np.prod(SHAPE[1:]))).reshape(SHAPE)
        np.testing.assert_allclose(got["eps"], eps, rtol=0, atol=5e-6)
        s = as_f64(got["sigma"]).reshape(-1, 1, 1, 1, 1)
        exact = (1 - s) * as_f64(got["z_0"]) + s * as_f64(got["eps"])
        np.testing.assert_allclose(got["z_t"], exact, rtol=0, atol=1e-5)


def test_xi_is_standard_normal_and_independent_of_eps(daemon):
    seed = 7
    noised = daemon(posterior_config(seed))
    shape = (4, 16, 64, 64)
    zeros = {"mean": np.zeros(shape, np.float32), "logvar": np.zeros(shape, np.float32)}
    got = exchange(noised, [zeros], lockstep=True)[0]
    xi = got["z_0"].astype(np.float64).reshape(-1)  # mean 0, logvar 0: z_0 is xi itself
    np.testing.assert_allclose(xi, reference.posterior_xi(seed, got["noise_id"], shape[1] * shape[2] * shape[3]).reshape(-1),
                               rtol=0, atol=5e-6)
    assert stats.kstest(xi, "norm").pvalue > P_MIN
    assert abs(np.corrcoef(xi, got["eps"].astype(np.float64).reshape(-1))[0, 1]) < 0.01


def test_bad_posteriors_are_refused_with_their_reason_while_serving(daemon):
    noised = daemon(posterior_config(1))
    good = posterior_batch(0)
    bad = [
        ({"mean": good["mean"]}, "missing_latents", 'no tensor named "logvar"'),
        ({"mean": good["mean"], "logvar": good["logvar"][:, :6]}, "posterior_mismatch", "must match"),
        ({"mean": good["mean"], "logvar": good["logvar"].astype(np.float16)}, "posterior_mismatch", "F16"),
        ({"mean": np.where(np.arange(good["mean"].size).reshape(SHAPE) == 5, np.nan, good["mean"]).astype(np.float32),
          "logvar": good["logvar"]}, "nonfinite_posterior", "mean 'mean'"),
        ({"mean": good["mean"], "logvar": np.full(SHAPE, np.inf, np.float32)}, "nonfinite_posterior", "logvar 'logvar'"),
    ]
    with Consumer(noised.output_endpoint) as consumer, Producer(noised.acked_endpoint) as producer:
        for tensors, _, _ in bad:
            producer.send(tensors)
        producer.send(good)
        report = producer.flush(30_000)
        producer.close(check=False)
        assert consumer.recv(timeout_ms=30_000) is not None
    assert report.acknowledged == 1, report
    assert [(r.reason, fragment in r.detail) for r, (_, _, fragment) in zip(report.rejected, bad)] == \
        [(reason, True) for _, reason, _ in bad], report.rejected


def test_a_bad_posterior_config_is_an_error_naming_the_key(noised_bin, tmp_path):
    config = merge(default_config(tmp_path, socket_dir(tmp_path)), {"input": {"posterior": {"mean": "m", "logvar": "m"}}})
    result = run_cli(noised_bin, "check-config", str(write_config(tmp_path / "bad.yaml", config)))
    assert result.returncode != 0 and "input.posterior.logvar: must differ from mean ('m')" in result.stderr, result.stderr
    del config["input"]["posterior"]["logvar"]
    result = run_cli(noised_bin, "check-config", str(write_config(tmp_path / "bad.yaml", config)))
    assert result.returncode != 0 and "input.posterior.logvar: missing" in result.stderr, result.stderr
