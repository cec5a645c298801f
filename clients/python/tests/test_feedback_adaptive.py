"""End-to-end: the loss-aware proposal and its weights, stratified sigma, and the toy trainer."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from noised_client import Reporter
from tests.exchange import Session
from tests.harness import REPO_ROOT
from tests.reports import (ADAPTIVE, HARD_BAND, band_loss, exchange_until, expected_proposal, feedback_config,
                           in_hard_band, is_adapted, latents, proposal_cdf)

P_MIN = 1e-4
Z_MAX = 5.0  # a correct daemon lands within 5 standard errors with probability 1 - 6e-7
EXAMPLES = REPO_ROOT / "clients" / "python" / "examples"
TOY_TIMEOUT_S = 180


def test_the_proposal_moves_toward_high_loss_and_the_weights_keep_it_unbiased(daemon, sockets):
    feedback = f"ipc://{sockets}/feedback.sock"
    noised = daemon(feedback_config(feedback, adaptive=ADAPTIVE))
    with Session(noised) as session, Reporter(feedback) as reporter:
        first = session.exchange([latents(0, 64)])[0]
        # Before warm-up every weight is exactly 1.
        assert first["weight"].dtype == np.float32 and first["weight"].shape == (64,)
        assert np.all(first["weight"] == 1.0)

        def report(index, got):
            reporter.report(index, got["sigma"], band_loss(got["sigma"]))

        exchange_until(session, is_adapted, "adapted weights", batch=256, first_index=1, on_output=report)
        # Every later report would repeat the same per-bin losses, so the proposal is now fixed.
        outputs = session.exchange([latents(1000 + index, 256) for index in range(40)])

    sigma = np.concatenate([got["sigma"] for got in outputs]).astype(np.float64)
    weight = np.concatenate([got["weight"] for got in outputs]).astype(np.float64)
    n = len(sigma)
    inside, outside = expected_proposal()
    band_mass = inside * (HARD_BAND[1] - HARD_BAND[0])

    # The proposal's mass in the high-loss band grows from p's 0.2 to the contract's q.
    share = np.mean(in_hard_band(sigma))
    assert abs(share - band_mass) < Z_MAX * np.sqrt(band_mass * (1 - band_mass) / n), (share, band_mass)
    assert stats.kstest(sigma, lambda x: proposal_cdf(x, inside, outside)).pvalue > P_MIN
    assert stats.kstest(sigma, "uniform").pvalue < P_MIN

    # weight = p/q: below 1 in the band, above 1 elsewhere, and exactly the contract's values.
    away_from_edges = np.min(np.abs(sigma[:, None] - np.array(HARD_BAND)), axis=1) > 1e-4
    expected_weight = np.where(in_hard_band(sigma), 1 / inside, 1 / outside)
    np.testing.assert_allclose(weight[away_from_edges], expected_weight[away_from_edges], rtol=1e-4)
    assert np.all(weight[in_hard_band(sigma) & away_from_edges] < 1)
    assert np.all(weight[~in_hard_band(sigma) & away_from_edges] > 1)

    # E_q[w f(sigma)] = E_p[f(sigma)] for p uniform on [0, 1]: f = 1, sigma, sigma².
    for power, expected in [(0, 1.0), (1, 1 / 2), (2, 1 / 3)]:
        values = weight * sigma ** power
        tolerance = Z_MAX * np.std(values) / np.sqrt(n)
        assert abs(np.mean(values) - expected) < tolerance, (power, np.mean(values), expected, tolerance)
        # Unweighted, the proposal's bias toward the band would show (except for f = 1).
        if power:
            assert abs(np.mean(sigma ** power) - expected) > 2 * tolerance


def batch_means(daemon, name: str, stratified: bool, batches: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    noised = daemon({"seed": 99, "schedule": {"stratified": stratified}}, name=name)
    with Session(noised) as session:
        outputs = session.exchange([latents(index, batch) for index in range(batches)])
    sigma = np.stack([np.asarray(got["sigma"], np.float64) for got in outputs])
    return sigma.mean(axis=1), sigma


def test_stratified_sigma_lowers_the_variance_of_the_batch_mean(daemon):
    batches, batch = 200, 16
    plain_means, _ = batch_means(daemon, "plain", False, batches, batch)
    strata_means, strata = batch_means(daemon, "stratified", True, batches, batch)

    # Independent uniforms: Var(mean) = 1/(12 B); B strata cut it to 1/(12 B³). With 200 batches the
    # sample variance is within ±40 % of its expectation far beyond p = 1e-4 (chi-square, 199 df).
    plain_expected = 1 / (12 * batch)
    assert 0.6 < np.var(plain_means, ddof=1) / plain_expected < 1.6
    assert np.var(strata_means, ddof=1) / np.var(plain_means, ddof=1) < 1 / 16
    # One sample per stratum in every batch...
    strata_index = np.floor(strata * batch).astype(np.int64)
    assert np.all(np.sort(strata_index, axis=1) == np.arange(batch)), strata_index[:4]
    # ...placed at random: every sample position still sees sigma ~ U[0, 1).
    assert stats.kstest(strata[:, 0], "uniform").pvalue > P_MIN
    assert stats.kstest(strata.ravel(), "uniform").pvalue > P_MIN


def test_the_toy_trainer_favours_its_high_loss_band(noised_bin):
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "clients" / "python"))
    try:
        finished = subprocess.run(
            [sys.executable, str(EXAMPLES / "train_toy.py"), "--spawn-daemon", str(noised_bin), "--steps", "150",
             "--print-every", "50", "--seed", "3"],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TOY_TIMEOUT_S, env=environment)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"train_toy.py did not finish within {TOY_TIMEOUT_S} s: {error.stdout!r}")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    final = re.search(r"final hard_band_mass=([\d.]+) curriculum_band_mass=([\d.]+)", finished.stdout)
    assert final, finished.stdout
    proposal, curriculum = float(final.group(1)), float(final.group(2))
    # The hard band [0.6, 0.8) holds 0.2 of the uniform curriculum; with the toy's losses the
    # proposal gives it about a third. 3200 samples put the share within ±0.04 of either.
    assert proposal > 0.26, finished.stdout
    assert abs(curriculum - 0.2) < 0.04, finished.stdout
    assert re.search(r"noised exited with 0: .*msg=\"?stopped", finished.stdout), finished.stdout
