"""Reference of `schedule.coupling` in numpy: which noise stream each sample of a batch gets.

From a batch's clean latents z_0 and its samples' own noise ids, `couple` gives the noise ids the
daemon sends in `noise_id` (docs/schedules.md, "Batch coupling"); `eps` is then
`reference.noise_batch(seed, those ids, n)` and σ stays each sample's own, drawn from its own id.
Costs are recomputed in float64 here (the daemon sums f32 chunks in a fixed order), so the two
agree wherever the best choice is not a near-tie. `assignment` needs scipy.
"""

from __future__ import annotations

import numpy as np

from . import reference

__all__ = ["candidate_ids", "costs", "couple", "sinkhorn_plan", "choose_from_plan"]

_CANDIDATE_SHIFT = 56  # knn candidate c of id n is n ^ (c << 56)
_CHOICE_WORD1 = 2  # sinkhorn's per-sample uniform: counter (0, 2, id) of the σ stream
_STOP_THRESHOLD = 1e-9  # POT's default stopThr, checked every tenth iteration


def costs(z0, eps) -> np.ndarray:
    """Squared Euclidean distances ``[B, M]`` between samples ``[B, ...]`` and noises ``[M, ...]``."""
    z = np.asarray(z0).astype(np.float32).astype(np.float64).reshape(len(z0), -1)
    e = np.asarray(eps, dtype=np.float64).reshape(len(eps), -1)
    return (z * z).sum(1)[:, None] + (e * e).sum(1)[None, :] - 2 * z @ e.T


def candidate_ids(noise_ids, candidates: int) -> np.ndarray:
    """``[B, k]``: knn candidate c of a sample with noise id n is stream n ^ (c << 56)."""
    ids = np.asarray(noise_ids, dtype=np.uint64)
    shifts = np.arange(candidates, dtype=np.uint64) << np.uint64(_CANDIDATE_SHIFT)
    return ids[:, None] ^ shifts[None, :]


def sinkhorn_plan(cost, reg: float, iterations: int) -> np.ndarray:
    """POT's ``ot.sinkhorn(a, b, cost / cost.max(), reg, numItermax=iterations)`` with uniform
    marginals, written out (sinkhorn_knopp: u = v = 1/n, v = b / Kᵀu, u = 1 / ((1/a) K v), stop
    check every tenth iteration)."""
    cost = np.asarray(cost, dtype=np.float64)
    n = len(cost)
    scale = cost.max() if cost.max() > 0 else 1.0
    kernel = np.exp((cost / scale) / -reg)
    a = b = 1.0 / n
    u = np.full(n, 1.0 / n)
    v = u.copy()
    for iteration in range(iterations):
        kt_u = kernel.T @ u
        next_v = b / kt_u
        next_u = 1.0 / ((1.0 / a) * (kernel @ next_v))
        if np.any(kt_u == 0) or not (np.all(np.isfinite(next_u)) and np.all(np.isfinite(next_v))):
            break
        u, v = next_u, next_v
        if iteration % 10 == 0 and np.linalg.norm(v * (kernel.T @ u) - b) < _STOP_THRESHOLD:
            break
    return u[:, None] * kernel * v[None, :]


def choose_from_plan(plan, uniforms) -> np.ndarray:
    """Per row, the first column whose running row sum exceeds uniform × the row's sum."""
    cumulative = np.cumsum(plan, axis=1)
    columns = [int(np.searchsorted(row, u * row[-1], side="right")) for row, u in zip(cumulative, uniforms)]
    return np.minimum(columns, plan.shape[1] - 1)


def couple(method: str, z0, seed: int, noise_ids, *, reg: float = 0.05, iterations: int = 100,
           candidates: int = 4) -> np.ndarray:
    """The noise ids the daemon sends for samples z0 ``[B, ...]`` with their own ids, under
    `schedule.coupling.method` (none, assignment, sinkhorn, knn)."""
    ids = np.asarray(noise_ids, dtype=np.uint64)
    n = int(np.prod(np.shape(z0)[1:]))
    if method == "none" or (method in ("assignment", "sinkhorn") and len(ids) == 1):
        return ids
    if method == "knn":
        options = candidate_ids(ids, candidates)
        chosen = [options[b][np.argmin(costs(z0[b:b + 1], reference.noise_batch(seed, options[b], n))[0])]
                  for b in range(len(ids))]
        return np.array(chosen, dtype=np.uint64)
    cost = costs(z0, reference.noise_batch(seed, ids, n))
    if method == "assignment":
        from scipy.optimize import linear_sum_assignment

        rows, columns = linear_sum_assignment(cost)
        return ids[columns[np.argsort(rows)]]
    if method == "sinkhorn":
        uniforms = reference.sigma_uniforms(seed, ids, word1=_CHOICE_WORD1)[0]
        return ids[choose_from_plan(sinkhorn_plan(cost, reg, iterations), uniforms)]
    raise ValueError(f"unknown coupling method {method!r}")
