"""The reference noise stream v1 against known answers, an independent scalar version, and statistics.

Runs without the daemon.
"""

import math

import ml_dtypes
import numpy as np
import pytest
from scipy import stats

from noised_client import reference

KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]
P_MIN = 1e-4


def scalar_philox(counter, key):
    """Philox4x32-10 on Python ints, written independently of the vectorized one."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for round_index in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (p1 >> 32) ^ c1 ^ k0, p1 & 0xFFFFFFFF, (p0 >> 32) ^ c3 ^ k1, p0 & 0xFFFFFFFF
        k0, k1 = (k0 + 0x9E3779B9) & 0xFFFFFFFF, (k1 + 0xBB67AE85) & 0xFFFFFFFF
    return c0, c1, c2, c3


def scalar_group(seed, noise_id, group):
    """eps[4g..4g+3] from the contract's formulas, one group at a time."""
    x = scalar_philox(
        (group & 0xFFFFFFFF, group >> 32, noise_id & 0xFFFFFFFF, noise_id >> 32),
        (seed & 0xFFFFFFFF, seed >> 32),
    )

    def signed(word):
        return word - (1 << 32) if word >= 1 << 31 else word

    u0, u1 = ((x[0] >> 8) + 0.5) * 2.0**-24, ((x[2] >> 8) + 0.5) * 2.0**-24
    a0, a1 = signed(x[1]) * 2.0**-31, signed(x[3]) * 2.0**-31
    r0, r1 = math.sqrt(-2 * math.log(u0)), math.sqrt(-2 * math.log(u1))
    return [r0 * math.cos(math.pi * a0), r0 * math.sin(math.pi * a0),
            r1 * math.cos(math.pi * a1), r1 * math.sin(math.pi * a1)]


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    assert tuple(int(w) for w in reference.philox4x32_10(counter, key)) == expected
    assert scalar_philox(counter, key) == expected


def test_vectorized_philox_matches_scalar_on_random_inputs():
    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, size=(64, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(64, 2), dtype=np.uint64)
    got = reference.philox4x32_10(counters, keys)
    for counter, key, row in zip(counters.tolist(), keys.tolist(), got.tolist()):
        assert tuple(row) == scalar_philox(counter, key)


@pytest.mark.parametrize("seed,noise_id", [(0, 0), (1234, 5), (2**64 - 1, (7 << 48) | 12345), (0xDEADBEEF, 2**40 + 3)])
def test_noise_layout_matches_the_scalar_formulas(seed, noise_id):
    n = 23  # not a multiple of 4: the last group is cut short
    expected = [v for g in range(6) for v in scalar_group(seed, noise_id, g)][:n]
    np.testing.assert_allclose(reference.noise(seed, noise_id, n), expected, rtol=0, atol=1e-12)


def test_noise_is_a_prefix_stream_and_batches_agree():
    ids = np.array([3, 1 << 48, 2**63 + 9], dtype=np.uint64)
    batch = reference.noise_batch(99, ids, 37)
    for row, noise_id in zip(batch, ids.tolist()):
        np.testing.assert_array_equal(row, reference.noise(99, noise_id, 64)[:37])
    # I64 ids are their bit pattern: -1 as I64 is the id 2**64 - 1.
    np.testing.assert_array_equal(reference.noise_batch(99, np.array([-1], np.int64), 8)[0],
                                  reference.noise(99, 2**64 - 1, 8))


def test_noise_depends_on_seed_and_id():
    base = reference.noise(1, 1, 64)
    assert not np.allclose(base, reference.noise(2, 1, 64))
    assert not np.allclose(base, reference.noise(1, 2, 64))
    assert not np.allclose(base, reference.noise(1, 1 | (1 << 32), 64))


def test_noise_is_standard_normal():
    values = reference.noise_batch(1234, np.arange(64), 16384).ravel()
    n = values.size
    assert stats.kstest(values, "norm").pvalue > P_MIN
    assert abs(values.mean()) < 5 / math.sqrt(n)
    assert abs(values.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.kurtosis(values)) < 5 * math.sqrt(24 / n)
    # Neighbouring elements (same and different radius) and different ids are uncorrelated.
    grid = values.reshape(-1, 4)
    for a, b in [(0, 1), (1, 2), (0, 2)]:
        assert abs(np.corrcoef(grid[:, a], grid[:, b])[0, 1]) < 5 / math.sqrt(grid.shape[0])
    streams = values.reshape(64, -1)
    assert abs(np.corrcoef(streams[0], streams[1])[0, 1]) < 5 / math.sqrt(streams.shape[1])
    # Squared pairs sharing a radius are independent of the angle: their sum is chi-square(2).
    assert stats.kstest(grid[:, 0] ** 2 + grid[:, 1] ** 2, "chi2", args=(2,)).pvalue > P_MIN


def test_sigma_uniforms_follow_the_53_bit_construction():
    seed, noise_id = 0x0123456789ABCDEF, (3 << 48) | 17
    x = scalar_philox((0, 0, noise_id & 0xFFFFFFFF, noise_id >> 32),
                      (seed & 0xFFFFFFFF, (seed >> 32) ^ 0x5349474D))
    u1 = (float((x[0] << 21) | (x[1] >> 11)) + 0.5) * 2.0**-53
    u2 = (float((x[2] << 21) | (x[3] >> 11)) + 0.5) * 2.0**-53
    got1, got2 = reference.sigma_uniforms(seed, noise_id)
    assert (float(got1), float(got2)) == (u1, u2)


def test_sigma_uniforms_are_uniform_and_independent():
    u1, u2 = reference.sigma_uniforms(42, np.arange(200_000, dtype=np.uint64))
    for u in (u1, u2):
        assert 0 < u.min() and u.max() < 1
        assert stats.kstest(u, "uniform").pvalue > P_MIN
    assert abs(np.corrcoef(u1, u2)[0, 1]) < 5 / math.sqrt(u1.size)


def test_schedule_quantiles():
    u = np.array([1e-9, 0.25, 0.5, 0.75, 1 - 1e-9])
    uniform = reference.uniform_sigma(u, 0.1, 0.9)
    assert uniform.dtype == np.float32
    np.testing.assert_allclose(uniform, 0.1 + 0.8 * u, rtol=1e-6)
    logit = reference.logit_normal_sigma(u, mean=0.5, std=1.2, sigma_min=0.0, sigma_max=1.0)
    assert np.all(np.diff(logit) > 0)
    assert logit[2] == pytest.approx(1 / (1 + math.exp(-0.5)), rel=1e-6)
    samples = reference.logit_normal_sigma(reference.sigma_uniforms(5, np.arange(50_000))[0], 0.5, 1.2)
    logits = np.log(samples.astype(np.float64) / (1 - samples))
    assert stats.kstest(logits, "norm", args=(0.5, 1.2)).pvalue > P_MIN


def test_bf16_rounding_is_nearest_even_and_matches_ml_dtypes():
    rng = np.random.default_rng(3)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    finite = np.isfinite(values)
    ours = reference.f32_to_bf16(values[finite]).view(np.uint16)
    theirs = values[finite].astype(ml_dtypes.bfloat16).view(np.uint16)
    np.testing.assert_array_equal(ours, theirs)
    assert np.all(np.isnan(reference.f32_to_bf16(values[np.isnan(values)]).astype(np.float32)))

    def bf16_bits(word):
        return int(reference.f32_to_bf16(np.array([word], np.uint32).view(np.float32)).view(np.uint16)[0])

    assert bf16_bits(0x3F808000) == 0x3F80  # tie, even below: round down
    assert bf16_bits(0x3F818000) == 0x3F82  # tie, odd below: round up
    assert bf16_bits(0x3F808001) == 0x3F81  # above the tie: round up
    assert bf16_bits(0x7F7FFFFF) == 0x7F80  # largest f32 overflows to +inf
    assert bf16_bits(0xFF800000) == 0xFF80  # -inf stays -inf
    assert bf16_bits(0x80000000) == 0x8000  # -0 stays -0
    assert bf16_bits(0x7F800001) & 0x7FFF > 0x7F80  # a NaN whose payload sits in the low bits stays NaN


def test_round_to_dtype():
    x = np.array([1.0009765625, 65520.0, -3.1415927], np.float32)
    np.testing.assert_array_equal(reference.round_to_dtype(x, np.float32), x)
    assert reference.round_to_dtype(x, np.float16)[1] == np.inf  # past f16's max rounds to inf
    assert reference.round_to_dtype(x, ml_dtypes.bfloat16).dtype == np.dtype(ml_dtypes.bfloat16)
    with pytest.raises(ValueError, match="output dtype"):
        reference.round_to_dtype(x, np.int32)


def test_noised_z_t_formula_and_exact_endpoints():
    rng = np.random.default_rng(11)
    z0 = rng.standard_normal((4, 3, 5)).astype(np.float32)
    z0[:, 0, 0] = -0.0
    eps = rng.standard_normal((4, 3, 5)).astype(np.float32)
    sigma = np.array([0.0, 1.0, 0.25, 0.7], np.float32)
    z_t = reference.noised_z_t(z0, sigma, eps)
    assert z_t.dtype == np.float32
    np.testing.assert_array_equal(z_t[0].view(np.uint32), z0[0].view(np.uint32))
    np.testing.assert_array_equal(z_t[1].view(np.uint32), eps[1].view(np.uint32))
    for b in (2, 3):
        exact = (1 - np.float64(sigma[b])) * z0[b] + np.float64(sigma[b]) * eps[b]
        np.testing.assert_allclose(z_t[b], exact, rtol=0, atol=4e-7 * np.abs(exact).max())
