"""Reference implementation of noise stream v1, in vectorized numpy.

This reproduces, from (seed, noise_id) alone, the eps and the sigma uniforms the daemon used,
so a trainer can regenerate or audit any sample. It favours clarity over speed.

Philox4x32-10 (Random123) is computed in uint64 so each 32x32 -> 64-bit product is exact.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = [
    "philox4x32_10",
    "noise",
    "noise_batch",
    "sigma_uniforms",
    "uniform_sigma",
    "logit_normal_sigma",
    "noised_z_t",
    "posterior_xi",
    "output_noise_ids",
    "posterior_z0",
    "frame_sigmas",
    "stratify",
    "f32_to_bf16",
    "round_to_dtype",
]

_MASK32 = np.uint64(0xFFFFFFFF)
_MULTIPLIERS = (np.uint64(0xD2511F53), np.uint64(0xCD9E8D57))
_KEY_BUMPS = (np.uint64(0x9E3779B9), np.uint64(0xBB67AE85))
_SIGMA_KEY_TWEAK = 0x5349474D  # "SIGM": separates the sigma stream from the eps stream.
_POSTERIOR_KEY_TWEAK = 0x504F5354  # "POST": the posterior's xi stream.
_ROUNDS = 10


def philox4x32_10(counter, key) -> np.ndarray:
    """Philox4x32-10 of counters ``[..., 4]`` under keys ``[..., 2]`` (broadcast), as uint32 ``[..., 4]``."""
    counter = np.asarray(counter, dtype=np.uint64) & _MASK32
    key = np.asarray(key, dtype=np.uint64) & _MASK32
    if counter.shape[-1:] != (4,) or key.shape[-1:] != (2,):
        raise ValueError(f"counter must end in 4 words and key in 2, got {counter.shape} and {key.shape}")
    c0, c1, c2, c3 = (counter[..., i] for i in range(4))
    k0, k1 = key[..., 0], key[..., 1]
    for round_index in range(_ROUNDS):
        if round_index:
            k0 = (k0 + _KEY_BUMPS[0]) & _MASK32
            k1 = (k1 + _KEY_BUMPS[1]) & _MASK32
        product0 = _MULTIPLIERS[0] * c0
        product1 = _MULTIPLIERS[1] * c2
        hi0, lo0 = product0 >> np.uint64(32), product0 & _MASK32
        hi1, lo1 = product1 >> np.uint64(32), product1 & _MASK32
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return np.stack(np.broadcast_arrays(c0, c1, c2, c3), axis=-1).astype(np.uint32)


def _split64(value) -> tuple[np.ndarray, np.ndarray]:
    value = np.asarray(value).astype(np.uint64)  # I64 noise ids reinterpret as their bit pattern
    return value & _MASK32, value >> np.uint64(32)


def noise_batch(seed: int, noise_ids, n: int) -> np.ndarray:
    """eps for each noise id: float64 ``[len(noise_ids), n]`` (the first n elements of each stream)."""
    ids = np.atleast_1d(np.asarray(noise_ids))
    groups = np.arange((n + 3) // 4, dtype=np.uint64)
    id_lo, id_hi = _split64(ids)
    group_lo, group_hi = _split64(groups)
    counter = np.stack(
        np.broadcast_arrays(group_lo[None, :], group_hi[None, :], id_lo[:, None], id_hi[:, None]), axis=-1
    )
    seed_lo, seed_hi = _split64(np.uint64(seed))
    x = philox4x32_10(counter, np.stack([seed_lo, seed_hi])).astype(np.uint64)
    # 24-bit uniforms in (0, 1) for the radius, signed 32-bit fractions in [-1, 1) for the angle.
    u0 = ((x[..., 0] >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0**-24
    u1 = ((x[..., 2] >> np.uint64(8)).astype(np.float64) + 0.5) * 2.0**-24
    a0 = x[..., 1].astype(np.uint32).view(np.int32).astype(np.float64) * 2.0**-31
    a1 = x[..., 3].astype(np.uint32).view(np.int32).astype(np.float64) * 2.0**-31
    r0 = np.sqrt(-2.0 * np.log(u0))
    r1 = np.sqrt(-2.0 * np.log(u1))
    pairs = np.stack(
        [r0 * np.cos(np.pi * a0), r0 * np.sin(np.pi * a0), r1 * np.cos(np.pi * a1), r1 * np.sin(np.pi * a1)],
        axis=-1,
    )
    return pairs.reshape(len(ids), -1)[:, :n]


def noise(seed: int, noise_id: int, n: int) -> np.ndarray:
    """The first n elements of the eps stream of one sample, as float64."""
    return noise_batch(seed, [noise_id], n)[0]


def sigma_uniforms(seed: int, noise_id, word0: int = 0, word1: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The two 53-bit uniforms in (0, 1) of each noise id at counter (word0, word1, id): (0, 0) is
    the sample's σ (the daemon maps u1 through the schedule), (1 + c, 0) frame chunk c's σ, (0, 1)
    the conditioning choice."""
    ids = np.asarray(noise_id)
    id_lo, id_hi = _split64(ids)
    first, second = np.full_like(id_lo, word0), np.full_like(id_lo, word1)
    seed_lo, seed_hi = _split64(np.uint64(seed))
    key = np.stack([seed_lo, seed_hi ^ np.uint64(_SIGMA_KEY_TWEAK)])
    x = philox4x32_10(np.stack([first, second, id_lo, id_hi], axis=-1), key).astype(np.uint64)

    def uniform53(high: np.ndarray, low: np.ndarray) -> np.ndarray:
        bits = (high << np.uint64(21)) | (low >> np.uint64(11))
        return (bits.astype(np.float64) + 0.5) * 2.0**-53

    return uniform53(x[..., 0], x[..., 1]), uniform53(x[..., 2], x[..., 3])


def uniform_sigma(u, sigma_min: float = 0.0, sigma_max: float = 1.0) -> np.ndarray:
    """Quantile of the uniform schedule, as the daemon stores it (F32)."""
    u = np.asarray(u, dtype=np.float64)
    return (sigma_min + (sigma_max - sigma_min) * u).astype(np.float32)


def logit_normal_sigma(u, mean: float, std: float, sigma_min: float = 0.0, sigma_max: float = 1.0) -> np.ndarray:
    """Quantile of the logit-normal schedule (needs scipy for the normal quantile), as F32."""
    from scipy.special import expit, ndtri

    u = np.asarray(u, dtype=np.float64)
    return (sigma_min + (sigma_max - sigma_min) * expit(mean + std * ndtri(u))).astype(np.float32)


def noised_z_t(z0_f32, sigma, eps_f32) -> np.ndarray:
    """z_t = (1 - sigma) * z_0 + sigma * eps, each operation rounded to f32 (sigma is per sample, [B]).

    The endpoints are exact by contract: sigma == 0 gives z_0 and sigma == 1 gives eps bit for bit
    (the formula alone would turn a -0.0 in z_0 into +0.0).
    """
    z0 = np.asarray(z0_f32, dtype=np.float32)
    eps = np.asarray(eps_f32, dtype=np.float32)
    s = np.asarray(sigma, dtype=np.float32).reshape((-1,) + (1,) * (z0.ndim - 1))
    blended = (np.float32(1) - s) * z0 + s * eps
    return np.where(s == 0, z0, np.where(s == 1, eps, blended))


def f32_to_bf16(x) -> np.ndarray:
    """Round f32 to bfloat16, nearest-even, NaN kept NaN (quiet), written out with integer arithmetic."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    lsb = (bits >> np.uint64(16)) & np.uint64(1)
    rounded = ((bits + np.uint64(0x7FFF) + lsb) >> np.uint64(16)) & np.uint64(0xFFFF)
    is_nan = np.isnan(np.asarray(x, dtype=np.float32))
    quiet_nan = (bits >> np.uint64(16)) | np.uint64(0x0040)
    result = np.where(is_nan, quiet_nan, rounded).astype(np.uint16)
    return result.view(ml_dtypes.bfloat16)


def round_to_dtype(x_f32, dtype) -> np.ndarray:
    """Round f32 values once to an output dtype: float32, float16 or bfloat16 (RNE)."""
    dtype = np.dtype(dtype)
    x = np.asarray(x_f32, dtype=np.float32)
    if dtype == np.float32:
        return x
    if dtype == np.float16:
        with np.errstate(over="ignore"):  # overflow to inf is the IEEE rounding result
            return x.astype(np.float16)
    if dtype == np.dtype(ml_dtypes.bfloat16):
        return f32_to_bf16(x)
    raise ValueError(f"output dtype must be float32, float16 or bfloat16, got {dtype}")


_MASK64 = (1 << 64) - 1


def _splitmix64(seed: int):
    state = seed & _MASK64
    while True:
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        yield z ^ (z >> 31)


def _below(generator, bound: int) -> int:
    """Uniform in [0, bound) by Lemire's multiply-and-reject, as the daemon draws it."""
    product = next(generator) * bound
    if product & _MASK64 < bound:
        threshold = ((1 << 64) - bound) % bound
        while product & _MASK64 < threshold:
            product = next(generator) * bound
    return product >> 64


def stratify(u1, u2_first: float) -> np.ndarray:
    """`schedule.stratified`: a batch's B uniforms u1 moved one into each stratum [j/B, (j+1)/B),
    the strata permuted by Fisher–Yates over SplitMix64 seeded with the first sample's u2 · 2^53."""
    u = np.asarray(u1, dtype=np.float64)
    count = len(u)
    if count <= 1:
        return u
    strata = list(range(count))
    generator = _splitmix64(int(u2_first * 2.0**53))
    for i in range(count - 1, 0, -1):
        j = _below(generator, i + 1)
        strata[i], strata[j] = strata[j], strata[i]
    return np.minimum((np.array(strata, dtype=np.float64) + u) / count, np.nextafter(1.0, 0.0))


def frame_sigmas(seed: int, noise_ids, frames: int, quantile, *, mode: str = "independent", chunk: int = 1,
                 conditions=(), stratified: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """σ [B, T] (f32) and cond_mask [B, T] (None without conditioning) of `schedule.frames`, from
    the seed and noise ids alone (and, when ``stratified``, the batch they came in). `quantile`
    maps uniforms to σ (e.g. `uniform_sigma`); `conditions` are (weight, first, last) options.
    Not adaptive."""
    ids = np.asarray(noise_ids, dtype=np.uint64)
    draws = 1 if mode == "same" else -(-frames // chunk)

    def column(c: int) -> np.ndarray:
        u1, u2 = sigma_uniforms(seed, ids, 0 if mode == "same" else 1 + c)
        return np.asarray(quantile(stratify(u1, float(u2[0])) if stratified else u1), np.float32)

    columns = [column(c) for c in range(draws)]
    chunk_sigmas = np.stack(columns, axis=1)  # [B, draws]
    if mode == "sorted":
        chunk_sigmas = np.sort(chunk_sigmas, axis=1)
    frame_index = np.zeros(frames, np.int64) if mode == "same" else np.arange(frames) // chunk
    sigma = chunk_sigmas[:, frame_index]
    if not conditions:
        return sigma, None
    weights = np.array([c[0] for c in conditions], np.float64)
    cumulative = np.cumsum(weights)
    u = sigma_uniforms(seed, ids, 0, 1)[0]
    choice = np.minimum(np.searchsorted(cumulative, u * cumulative[-1], side="right"), len(conditions) - 1)
    first = np.array([conditions[k][1] for k in choice])[:, None]
    last = np.array([conditions[k][2] for k in choice])[:, None]
    frame = np.arange(frames)[None, :]
    mask = (frame < first) | (frame >= frames - last)
    return np.where(mask, np.float32(0), sigma), mask


def posterior_xi(seed: int, noise_ids, n: int) -> np.ndarray:
    """xi of `input.posterior` for each noise id, float64 ``[len(noise_ids), n]``: eps of the same
    ids under the seed with its high word XOR "POST"."""
    return noise_batch(int(seed) ^ (_POSTERIOR_KEY_TWEAK << 32), noise_ids, n)


def posterior_z0(seed: int, noise_ids, mean, logvar) -> np.ndarray:
    """z_0 = mean + exp(logvar / 2) * xi (float64, the daemon's f32 result is within a few ulp)
    for mean and logvar ``[B, ...]`` as sent (any float dtype)."""
    mean64 = np.asarray(mean).astype(np.float32).astype(np.float64)
    logvar64 = np.asarray(logvar).astype(np.float32).astype(np.float64)
    n = int(np.prod(mean64.shape[1:]))
    xi = posterior_xi(seed, noise_ids, n).reshape(mean64.shape)
    return mean64 + np.exp(logvar64 / 2) * xi


def output_noise_ids(noise_ids, output: int) -> np.ndarray:
    """The noise ids output `output` (its index in `outputs`, from 0) of a fan-out sends for input
    ids `noise_ids`: the index in the top four bits, so copies of a sample never share eps."""
    if not 0 <= output < 16:
        raise ValueError(f"output index must be in 0...15, got {output}")
    return np.asarray(noise_ids, dtype=np.uint64) ^ (np.uint64(output) << np.uint64(60))
