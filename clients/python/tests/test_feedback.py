"""End-to-end: loss reports drive the step, reach several daemons, and bad ones are rejected."""

import json
import struct
import time

import numpy as np
import pytest
from scipy import stats
from scipy.special import logit

from noised_client import Producer, Reporter, encode, reference
from tests.exchange import SEND_TIMEOUT_MS, Session, receive
from tests.reports import (ADAPTIVE, PAUSE_S, band_loss, exchange_until, expected_proposal, feedback_config,
                           in_hard_band, is_adapted, latents)

P_MIN = 1e-4
LATE_MEAN, LATE_STD = 1.0, 0.5
QUANTILE_TOLERANCE = 1e-5


def late_cdf(x):
    x = np.clip(np.asarray(x, np.float64), 1e-300, 1 - 1e-16)
    return stats.norm.cdf((logit(x) - LATE_MEAN) / LATE_STD)


def test_the_largest_reported_step_drives_the_curriculum(daemon, sockets):
    seed, batch = 77, 128
    feedback = f"ipc://{sockets}/feedback.sock"
    overrides = feedback_config(feedback, source="feedback", interpolation="hold", curriculum=[
        {"at_step": 0, "distribution": "uniform"},
        {"at_step": 500, "distribution": "logit_normal", "mean": LATE_MEAN, "std": LATE_STD},
    ])
    noised = daemon({"seed": seed, **overrides})
    with Session(noised) as session, Reporter(feedback) as reporter:
        # Before any report the step counts batches.
        first = exchange_until(session, lambda got: True, "a first batch", batch=batch)[0]
        assert first.step == 0
        reporter.report(500)
        exchange_until(session, lambda got: got.step == 500, "noised.step 500 after reporting step 500",
                       batch=batch, first_index=1)

        reporter.report(100)  # smaller than the largest so far: the step stays at 500
        outputs = []
        for index in range(20):
            session.send(latents(1000 + index, batch))
            outputs += receive(session.consumer, 1)
            time.sleep(PAUSE_S)
    assert [got.step for got in outputs] == [500] * len(outputs)

    sigma = np.concatenate([got["sigma"] for got in outputs])
    u1, _ = reference.sigma_uniforms(seed, np.concatenate([got["noise_id"] for got in outputs]))
    np.testing.assert_allclose(sigma, reference.logit_normal_sigma(u1, LATE_MEAN, LATE_STD),
                               rtol=0, atol=QUANTILE_TOLERANCE)
    assert stats.kstest(sigma, late_cdf).pvalue > P_MIN
    assert stats.kstest(sigma, "uniform").pvalue < P_MIN

    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert (stopped.count("reports"), stopped.count("reports_rejected")) == (2, 0)


def test_a_publishing_trainer_reaches_two_daemons(daemon, sockets):
    feedback = f"ipc://{sockets}/trainer-pub.sock"
    subscriber = feedback_config(feedback, source="feedback")
    subscriber["feedback"].update(bind=False, pattern="sub")
    with Reporter(feedback, bind=True, pattern="pub") as reporter:
        daemons = [daemon(subscriber, name=f"daemon{index}") for index in range(2)]
        sessions = [Session(noised) for noised in daemons]
        try:
            # A PUB socket drops reports until a subscriber has joined: keep reporting until both act.
            for session in sessions:
                exchange_until(session, lambda got: got.step == 700, "noised.step 700 from a published report",
                               on_output=lambda index, got: reporter.report(700))
        finally:
            for session in sessions:
                session.close()
    for noised in daemons:
        stopped = noised.stop()
        assert stopped.returncode == 0, stopped.stderr
        assert stopped.count("reports") >= 1 and stopped.count("reports_rejected") == 0


def report_message(step=None, **tensors) -> bytes:
    return encode(tensors, None if step is None else {"step": step})


F32 = np.float32
# Every bad report with tensors carries a step above the good one that follows: applied in part, it
# would show in noised.step.
REJECTED_STEP = "1000"
MALFORMED_REPORTS = {
    "step not a number": report_message("abc"),
    "negative step": report_message("-1"),
    "fractional step": report_message("1.5"),
    "empty step": report_message(""),
    "missing step": report_message(sigma=np.array([0.5], F32), loss=np.array([1.0], F32)),
    "sigma without loss": report_message(REJECTED_STEP, sigma=np.array([0.5], F32)),
    "loss without sigma": report_message(REJECTED_STEP, loss=np.array([1.0], F32)),
    "mismatched N": report_message(REJECTED_STEP, sigma=np.array([0.5, 0.6], F32), loss=np.array([1.0], F32)),
    "empty N": report_message(REJECTED_STEP, sigma=np.zeros(0, F32), loss=np.zeros(0, F32)),
    "two-dimensional": report_message(REJECTED_STEP, sigma=np.full((2, 1), 0.5, F32), loss=np.ones((2, 1), F32)),
    "sigma above 1": report_message(REJECTED_STEP, sigma=np.array([1.5], F32), loss=np.array([1.0], F32)),
    "sigma below 0": report_message(REJECTED_STEP, sigma=np.array([-0.25], F32), loss=np.array([1.0], F32)),
    "NaN sigma": report_message(REJECTED_STEP, sigma=np.array([np.nan], F32), loss=np.array([1.0], F32)),
    "NaN loss": report_message(REJECTED_STEP, sigma=np.array([0.5], F32), loss=np.array([np.nan], F32)),
    "infinite loss": report_message(REJECTED_STEP, sigma=np.array([0.5], F32), loss=np.array([np.inf], F32)),
    "F64 tensors": report_message(REJECTED_STEP, sigma=np.array([0.5]), loss=np.array([1.0])),
    "F16 loss": report_message(REJECTED_STEP, sigma=np.array([0.5], F32), loss=np.array([1.0], np.float16)),
    "not safetensors": b"this is not a safetensors file",
    "truncated header": struct.pack("<Q", 200) + b'{"__metadata__": {"step": "1"}}',
}


def count_numbers(value) -> int:
    """How many numbers a JSON value holds, whatever its nesting (the histories' layout is the daemon's)."""
    if isinstance(value, dict):
        return sum(count_numbers(item) for item in value.values())
    if isinstance(value, list):
        return sum(count_numbers(item) for item in value)
    return int(isinstance(value, (int, float)) and not isinstance(value, bool))


def test_malformed_reports_are_rejected_while_the_daemon_keeps_serving(daemon, sockets, tmp_path):
    feedback = f"ipc://{sockets}/feedback.sock"
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    noised = daemon({"state_dir": str(state_dir), **feedback_config(feedback, source="feedback", adaptive=ADAPTIVE)})
    with Session(noised) as session, Producer(feedback, acknowledged=False) as raw:
        for message in MALFORMED_REPORTS.values():
            raw.send_bytes(message, timeout_ms=SEND_TIMEOUT_MS)
        # Reports on one socket arrive in order: once step 42 shows, every bad one was handled.
        raw.send_bytes(report_message("42"), timeout_ms=SEND_TIMEOUT_MS)
        outputs = exchange_until(session, lambda got: got.step == 42, "noised.step 42 after the bad reports")
    assert max(got.step for got in outputs) == 42

    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    bad = len(MALFORMED_REPORTS)
    assert (stopped.count("reports"), stopped.count("reports_rejected")) == (bad + 1, bad)
    rejections = [record for record in noised.log_records() if record.get("msg") == "rejected report"]
    # Lines are rate-limited per reason (one a second, with a suppressed count); the stop line counts all.
    assert 1 <= len(rejections) <= bad, noised.stderr_text()
    assert all(record.get("reason") and record.get("detail") for record in rejections), rejections
    state = json.loads((state_dir / "state.json").read_text())
    assert state["reported_step"] == 42
    # No bad report was even partly applied: no loss reached the adaptive histories.
    history = state.get("loss_history")
    assert history is None or all(len(losses) == 0 for losses in history["losses"]), history


def test_adapted_histories_and_the_step_survive_a_restart(daemon, sockets, tmp_path):
    feedback = f"ipc://{sockets}/feedback.sock"
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    noised = daemon({"state_dir": str(state_dir), **feedback_config(feedback, source="feedback", adaptive=ADAPTIVE)})
    with Session(noised) as session, Reporter(feedback) as reporter:
        def report(index, got):
            reporter.report(index, got["sigma"], band_loss(got["sigma"]))

        warm = exchange_until(session, is_adapted, "adapted weights", batch=256, on_output=report)
        last_step = len(warm) - 1
        exchange_until(session, lambda got: got.step == last_step, f"noised.step {last_step}",
                       first_index=len(warm))
    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    state = json.loads((state_dir / "state.json").read_text())
    assert state["reported_step"] == last_step
    # Warm-up needed `history` losses in every bin.
    assert count_numbers(state["loss_history"]) >= ADAPTIVE["bins"] * ADAPTIVE["history"]

    noised.start()
    with Session(noised) as session:
        (after,) = session.exchange([latents(5000, 512)])
    assert after.step == last_step
    inside, outside = expected_proposal()
    sigma = np.asarray(after["sigma"], np.float64)
    expected_weight = np.where(in_hard_band(sigma), 1 / inside, 1 / outside)
    away_from_edges = np.min(np.abs(sigma[:, None] - np.array([0.6, 0.8])), axis=1) > 1e-4
    np.testing.assert_allclose(after["weight"][away_from_edges], expected_weight[away_from_edges], rtol=1e-4)
    assert noised.stop().returncode == 0


EARLY_MEAN = -1.5


def test_a_resume_moves_the_step_back_sigma_follows_and_no_noise_id_repeats(daemon, sockets):
    seed, batch = 91, 64
    feedback = f"ipc://{sockets}/feedback.sock"
    overrides = feedback_config(feedback, source="feedback", interpolation="hold", curriculum=[
        {"at_step": 0, "distribution": "logit_normal", "mean": EARLY_MEAN, "std": LATE_STD},
        {"at_step": 500, "distribution": "logit_normal", "mean": LATE_MEAN, "std": LATE_STD},
    ])
    noised = daemon({"seed": seed, **overrides})
    with Session(noised) as session, Reporter(feedback) as reporter:
        late = exchange_until(session, lambda got: got.step == 900, "noised.step 900",
                              batch=batch, on_output=lambda index, got: reporter.report(900))
        generation = reporter.resume(100)
        resumed = exchange_until(session, lambda got: got.step == 100, "noised.step 100 after the resume",
                                 batch=batch, first_index=500)
        # A report of the run before the resume, queued behind it, changes nothing; the next report
        # of the new generation (sent after it, on the same socket) shows it has been taken.
        reporter.generation = 0
        reporter.report(2000)
        reporter.generation = generation
        reporter.report(150)
        after = exchange_until(session, lambda got: got.step == 150, "noised.step 150 after a stale report",
                               batch=batch, first_index=1000)
        early = [got for got in resumed + after if got.step in (100, 150)]
        for _ in range(10):
            session.send(latents(2000 + len(early), batch))
            early += receive(session.consumer, 1)
    steps = [got.step for got in late + resumed + after]
    assert 2000 not in steps, "the stale report moved the step"
    assert all(got.step == 150 for got in early[-10:])

    ids = np.concatenate([got["noise_id"] for got in late + resumed + after + early[-10:]])
    assert len(np.unique(ids)) == len(ids), "a noise id repeated across the resume"
    sigma = np.concatenate([got["sigma"] for got in early])
    u1, _ = reference.sigma_uniforms(seed, np.concatenate([got["noise_id"] for got in early]))
    np.testing.assert_allclose(sigma, reference.logit_normal_sigma(u1, EARLY_MEAN, LATE_STD),
                               rtol=0, atol=QUANTILE_TOLERANCE)

    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    resumes = [f for f in noised.log_records() if f.get("msg", "").startswith("trainers resumed")]
    assert [(f["from_step"], f["to_step"], f["generation"]) for f in resumes] == [("900", "100", str(generation))]
    assert any(f.get("msg") == "stale report" for f in noised.log_records())
