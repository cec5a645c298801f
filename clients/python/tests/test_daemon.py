"""End-to-end: the daemon's eps, sigma and z_t against the reference noise stream.

Needs the noised binary (see tests/harness.py); every receive is bounded by a timeout.
"""

import ml_dtypes
import numpy as np
import pytest

from noised_client import reference
from tests.exchange import Session, as_f64, exchange, expand, ulp

EPS_TOLERANCE = 5e-6
SAMPLE_SHAPE = (3, 5, 7)  # 105 elements: the last Philox group of each sample is cut short
DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16}


def latents(batch, shape=SAMPLE_SHAPE, dtype=np.float32, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal((batch, *shape))).astype(dtype)


def reference_eps(seed, noise_ids, like):
    n = int(np.prod(like.shape[1:]))
    return reference.noise_batch(seed, noise_ids, n).reshape(like.shape)


@pytest.mark.parametrize("seed,instance", [(7, 0), (1234, 2), (0xDEADBEEFCAFE, 65535)])
def test_eps_and_sigma_match_the_reference(daemon, seed, instance):
    noised = daemon({"seed": seed, "instance": instance, "output": {"dtype": "f32"}})
    inputs = [
        {"latents": latents(3, seed=1), "noise_id": np.array([0, 1, (5 << 48) | 12345], np.uint64)},
        {"latents": latents(3, seed=2), "noise_id": np.array([2**40 + 3, 7, 123456789012], np.int64)},
        {"latents": latents(2, seed=3)},  # default ids: (instance << 48) | samples emitted before
    ]
    outputs = exchange(noised, inputs, lockstep=True)
    expected_ids = [inputs[0]["noise_id"], inputs[1]["noise_id"], np.uint64(instance << 48) + np.array([6, 7], np.uint64)]

    for index, (sent, got, ids) in enumerate(zip(inputs, outputs, expected_ids)):
        assert got.seq == index and got.step == index
        assert got.metadata["noised.seed"] == str(seed) and got.metadata["noised.protocol"] == "1"
        assert got["noise_id"].dtype == np.uint64
        np.testing.assert_array_equal(got["noise_id"], np.asarray(ids).astype(np.uint64))
        assert got["eps"].dtype == np.float32 and got["eps"].shape == sent["latents"].shape
        eps = reference_eps(seed, got["noise_id"], sent["latents"])
        np.testing.assert_allclose(got["eps"], eps, rtol=0, atol=EPS_TOLERANCE)

        assert got["sigma"].dtype == np.float32 and got["sigma"].shape == (len(ids),)
        u1, _ = reference.sigma_uniforms(seed, got["noise_id"])
        np.testing.assert_array_equal(got["sigma"], reference.uniform_sigma(u1))
        assert "z_0" not in got


@pytest.mark.parametrize("output_dtype", ["input", "f32", "bf16"])
def test_z_t_formula_for_each_input_and_output_dtype(daemon, output_dtype):
    seed = 99
    noised = daemon({"seed": seed, "output": {"dtype": output_dtype},
                     "schedule": {"sigma_min": 0.05, "sigma_max": 0.95}})
    inputs = [{"latents": latents(4, seed=i, dtype=DTYPES[name], scale=3)} for i, name in enumerate(DTYPES)]
    outputs = exchange(noised, inputs, lockstep=True)

    for sent, got in zip(inputs, outputs):
        z0 = sent["latents"]
        out_dtype = z0.dtype if output_dtype == "input" else np.dtype(DTYPES[output_dtype])
        assert got["z_t"].dtype == out_dtype and got["eps"].dtype == out_dtype
        assert got["z_t"].shape == z0.shape

        sigma = as_f64(got["sigma"])
        u1, _ = reference.sigma_uniforms(seed, got["noise_id"])
        np.testing.assert_allclose(sigma, reference.uniform_sigma(u1, 0.05, 0.95), rtol=0, atol=1e-7)
        eps = reference_eps(seed, got["noise_id"], z0)
        np.testing.assert_array_less(np.abs(as_f64(got["eps"]) - eps), EPS_TOLERANCE + ulp(eps, out_dtype))

        # f32 arithmetic on z_0 widened exactly, rounded once to the output dtype.
        s = expand(sigma, z0)
        z0_wide = as_f64(z0)
        exact = (1 - s) * z0_wide + s * eps
        f32_error = 2.0**-23 * ((1 - s) * np.abs(z0_wide) + s * np.abs(eps) + np.abs(exact))
        tolerance = s * EPS_TOLERANCE + f32_error + ulp(exact, out_dtype)
        np.testing.assert_array_less(np.abs(as_f64(got["z_t"]) - exact), tolerance)


@pytest.mark.parametrize("dtype", ["f32", "bf16"])
def test_sigma_endpoints_are_exact(daemon, dtype):
    z0 = latents(4, dtype=DTYPES[dtype], seed=5)
    z0[0, 0, 0, :3] = -0.0  # (1 - 0) * -0 + 0 * eps would be +0: the endpoint must be exact
    z0[1, 1, 1, :2] = 0.0
    bits = np.uint32 if dtype == "f32" else np.uint16

    clean = daemon({"output": {"include_clean": True}, "schedule": {"sigma_min": 0.0, "sigma_max": 0.0}},
                   name="clean")
    (got,) = exchange(clean, [{"latents": z0}])
    np.testing.assert_array_equal(got["sigma"], np.zeros(4, np.float32))
    np.testing.assert_array_equal(got["z_t"].view(bits), z0.view(bits))
    np.testing.assert_array_equal(got["z_0"].view(bits), z0.view(bits))

    noise = daemon({"schedule": {"sigma_min": 1.0, "sigma_max": 1.0}}, name="noise")
    (got,) = exchange(noise, [{"latents": z0}])
    np.testing.assert_array_equal(got["sigma"], np.ones(4, np.float32))
    np.testing.assert_array_equal(got["z_t"].view(bits), got["eps"].view(bits))
    assert "z_0" not in got


def eps_by_id(outputs):
    table = {}
    for got in outputs:
        for row, noise_id in enumerate(got["noise_id"].tolist()):
            table[noise_id] = (got["eps"][row].tobytes(), got["sigma"][row].tobytes(), got["z_t"][row].tobytes())
    return table


def test_eps_is_independent_of_workers_and_batch_composition(daemon):
    ids = np.array([0, 1, 2, 7, 1 << 48, (1 << 48) + 1, 2**40, 12345678901], np.uint64)
    z0 = latents(8, shape=(16, 32, 32), seed=8)
    whole = [{"latents": z0, "noise_id": ids}]
    split = [{"latents": z0[:3], "noise_id": ids[:3]}, {"latents": z0[3:], "noise_id": ids[3:]}]
    # Other traffic in between keeps several workers busy at once.
    filler = [{"latents": latents(4, shape=(16, 32, 32), seed=20 + i),
               "noise_id": np.arange(100 + 4 * i, 104 + 4 * i, dtype=np.uint64)} for i in range(4)]

    one = daemon({"workers": 1}, name="one-worker")
    three = daemon({"workers": 3}, name="three-workers")
    with Session(one) as to_one, Session(three) as to_three:
        tables = [
            eps_by_id(to_one.exchange(whole)),
            eps_by_id(to_three.exchange([filler[0], split[0], filler[1], filler[2], split[1], filler[3]])),
            eps_by_id(to_one.exchange(split)),
            eps_by_id(to_three.exchange(filler + whole)),
        ]
    for table in tables[1:]:
        for noise_id in ids.tolist():
            assert table[noise_id] == tables[0][noise_id], f"noise id {noise_id} differs"
