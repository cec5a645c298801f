"""Helpers for the feedback tests: daemon configs with a feedback channel, a loss that is high in one
sigma band, the proposal the contract predicts for it, and bounded loops that wait for the daemon
to act on reports (reports and batches travel on different sockets, so order is not guaranteed)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.exchange import Session, receive

ATTEMPTS = 200  # batches tried while waiting for the daemon to act on reports
PAUSE_S = 0.02  # between such attempts, so a report in flight can land

HARD_BAND = (0.6, 0.8)  # on the adaptive grid's bin edges for 20 bins over [0, 1]
HIGH_LOSS, LOW_LOSS = 9.0, 1.0
ADAPTIVE = {"enabled": True, "bins": 20, "history": 10, "mix": 0.5, "uniform_floor": 0.01}


def feedback_config(endpoint: str, *, source: str = "batches", adaptive: dict | None = None, **schedule) -> dict:
    """Overrides for a daemon that pulls reports on `endpoint` (bound) with a uniform curriculum."""
    return {
        "feedback": {"endpoint": endpoint, "bind": True, "pattern": "pull"},
        "steps": {"batches_per_step": 1, "source": source},
        "output": {"include_clean": False},
        "schedule": {"curriculum": [{"at_step": 0, "distribution": "uniform"}],
                     **({"adaptive": adaptive} if adaptive else {}), **schedule},
    }


def latents(index: int, batch: int) -> dict[str, np.ndarray]:
    return {"latents": np.random.default_rng(index).standard_normal((batch, 4)).astype(np.float32)}


def in_hard_band(sigma) -> np.ndarray:
    sigma = np.asarray(sigma, np.float64)
    return (sigma >= HARD_BAND[0]) & (sigma < HARD_BAND[1])


def band_loss(sigma) -> np.ndarray:
    """A trainer whose loss is HIGH_LOSS in the hard band and LOW_LOSS elsewhere."""
    return np.where(in_hard_band(sigma), HIGH_LOSS, LOW_LOSS).astype(np.float32)


def expected_proposal(adaptive: dict = ADAPTIVE) -> tuple[float, float]:
    """The contract's q_final density (inside, outside the hard band) for a uniform p on [0, 1]
    whose bins hold only band_loss values: sqrt(E[L²|bin]) is the loss itself."""
    band_mass = HARD_BAND[1] - HARD_BAND[0]
    normaliser = band_mass * HIGH_LOSS + (1 - band_mass) * LOW_LOSS
    mix, floor = adaptive["mix"], adaptive["uniform_floor"]
    inside, outside = ((1 - mix) + mix * loss / normaliser for loss in (HIGH_LOSS, LOW_LOSS))
    return (1 - floor) * inside + floor, (1 - floor) * outside + floor


def proposal_cdf(sigma, inside: float, outside: float) -> np.ndarray:
    """CDF of the piecewise-constant proposal: density `outside` except `inside` on the hard band."""
    sigma = np.clip(np.asarray(sigma, np.float64), 0, 1)
    low, high = HARD_BAND
    below = outside * np.minimum(sigma, low)
    within = inside * np.clip(sigma - low, 0, high - low)
    above = outside * np.maximum(sigma - high, 0)
    return below + within + above


def exchange_until(session: Session, condition, what: str, *, batch: int = 64, first_index: int = 0,
                   on_output=None) -> list:
    """Exchange batches one at a time until `condition(output)` holds; fail after ATTEMPTS.

    `on_output(index, output)` runs on every output (e.g. to report its losses)."""
    outputs = []
    for index in range(first_index, first_index + ATTEMPTS):
        session.send(latents(index, batch))
        output = receive(session.consumer, 1)[0]
        outputs.append(output)
        if on_output is not None:
            on_output(index, output)
        if condition(output):
            return outputs
        time.sleep(PAUSE_S)
    pytest.fail(f"{what}: not seen in {ATTEMPTS} batches")


def is_adapted(output) -> bool:
    return bool(np.any(np.asarray(output["weight"]) != 1.0))
