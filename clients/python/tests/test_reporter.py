"""Reporter and weighted_loss without a daemon: what goes on the wire, what is refused, the weighting."""

import time

import numpy as np
import pytest
import zmq

from noised_client import Reporter, decode, encode_report, weighted_loss

RECV_TIMEOUT_MS = 5_000


@pytest.fixture
def context():
    context = zmq.Context()
    yield context
    context.term()


def receive(socket: zmq.Socket) -> bytes:
    assert socket.poll(RECV_TIMEOUT_MS, zmq.POLLIN), f"no report within {RECV_TIMEOUT_MS} ms"
    return socket.recv()


def test_report_decodes_to_step_sigma_and_loss(sockets, context):
    endpoint = f"ipc://{sockets}/feedback.sock"
    pull = context.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.bind(endpoint)
    try:
        with Reporter(endpoint, context=context) as reporter:
            reporter.report(7, sigma=[0.0, 0.25, 1.0], loss=np.array([1.5, 2.0, 0.125], np.float64))
            reporter.report(8)
            tensors, metadata = decode(receive(pull))
            assert metadata == {"step": "7"}
            assert set(tensors) == {"sigma", "loss"}
            assert tensors["sigma"].dtype == np.float32 and tensors["loss"].dtype == np.float32
            np.testing.assert_array_equal(tensors["sigma"], np.array([0.0, 0.25, 1.0], np.float32))
            np.testing.assert_array_equal(tensors["loss"], np.array([1.5, 2.0, 0.125], np.float32))
            tensors, metadata = decode(receive(pull))
            assert (tensors, metadata) == ({}, {"step": "8"})
    finally:
        pull.close()


def test_report_is_a_safetensors_file():
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    message = encode_report(12345678901, sigma=np.linspace(0, 1, 5), loss=np.arange(5))
    tensors = safetensors_numpy.load(message)
    np.testing.assert_array_equal(tensors["sigma"], np.linspace(0, 1, 5).astype(np.float32))
    np.testing.assert_array_equal(tensors["loss"], np.arange(5, dtype=np.float32))
    assert decode(message)[1] == {"step": "12345678901"}


def test_pub_reporter_reaches_every_subscriber(sockets, context):
    endpoint = f"ipc://{sockets}/feedback-pub.sock"
    with Reporter(endpoint, bind=True, pattern="pub", context=context) as reporter:
        subscribers = []
        for _ in range(2):
            sub = context.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(endpoint)
            subscribers.append(sub)
        try:
            # PUB drops what it sends before a subscription arrives: resend until both have one.
            received = [None, None]
            deadline = time.monotonic() + RECV_TIMEOUT_MS / 1000
            while None in received and time.monotonic() < deadline:
                reporter.report(3, sigma=[0.5], loss=[2.0])
                for index, sub in enumerate(subscribers):
                    if received[index] is None and sub.poll(50, zmq.POLLIN):
                        received[index] = sub.recv()
            assert None not in received, "a subscriber got no report"
            for message in received:
                tensors, metadata = decode(message)
                assert metadata == {"step": "3"}
                np.testing.assert_array_equal(tensors["loss"], np.array([2.0], np.float32))
        finally:
            for sub in subscribers:
                sub.close()


def test_torch_tensors_are_reported_as_f32():
    torch = pytest.importorskip("torch")
    sigma = torch.tensor([0.1, 0.9], dtype=torch.bfloat16)
    loss = torch.tensor([3.0, 4.0], requires_grad=True) * 2
    tensors, _ = decode(encode_report(1, sigma, loss))
    np.testing.assert_array_equal(tensors["sigma"], sigma.float().numpy())
    np.testing.assert_array_equal(tensors["loss"], np.array([6.0, 8.0], np.float32))


@pytest.mark.parametrize("step, sigma, loss, message", [
    (-1, None, None, "step must be an integer in [0, "),
    (1.5, None, None, "step must be an integer in [0, "),
    ("3", None, None, "step must be an integer in [0, "),
    (True, None, None, "step must be an integer in [0, "),
    (1, [0.5], None, "loss is missing"),
    (1, None, [0.5], "sigma is missing"),
    (1, [0.5, 0.6], [1.0], "same length"),
    (1, [], [], "same length >= 1"),
    (1, [[0.5]], [[1.0]], "shape [N]"),
    (1, [1.5], [1.0], "sigma must lie in [0, 1]"),
    (1, [-0.01], [1.0], "sigma must lie in [0, 1]"),
    (1, [0.5], [np.nan], "loss holds non-finite"),
    (1, [np.inf], [1.0], "sigma holds non-finite"),
    (1, ["a"], [1.0], "real numbers"),
])
def test_reports_the_daemon_would_reject_are_refused(step, sigma, loss, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        encode_report(step, sigma, loss)


def test_unknown_pattern_is_refused(sockets):
    with pytest.raises(ValueError, match="pattern must be one of"):
        Reporter(f"ipc://{sockets}/x.sock", pattern="req")


def test_push_report_times_out_without_a_daemon(sockets, context):
    # A binding PUSH socket with no peer has nowhere to queue (a connecting one would queue).
    with Reporter(f"ipc://{sockets}/nobody.sock", bind=True, context=context, linger_ms=0) as reporter:
        with pytest.raises(TimeoutError, match="within 50 ms"):
            reporter.report(1, timeout_ms=50)


def test_weighted_loss_is_the_mean_of_weight_times_loss():
    loss = np.array([1.0, 2.0, 4.0])
    weight = np.array([0.5, 1.0, 2.0], np.float32)
    assert weighted_loss(loss, weight) == pytest.approx((0.5 + 2.0 + 8.0) / 3)
    per_element = np.array([[1.0, 3.0], [2.0, 2.0], [0.0, 8.0]])
    assert weighted_loss(per_element, weight) == pytest.approx((0.5 * 4 + 1.0 * 4 + 2.0 * 8) / 6)


def test_weighted_loss_is_unbiased_under_the_proposal():
    # sigma ~ q(s) = 2s on [0, 1] with weight p/q = 1/(2s) estimates E_p[loss] for p uniform.
    rng = np.random.default_rng(11)
    sigma = np.sqrt(rng.random(200_000))
    loss = sigma ** 2
    estimate = weighted_loss(loss, 1 / (2 * sigma))
    # E_p[s²] = 1/3; the estimator's standard deviation is sqrt(Var_q[s/2] / n) ≈ 3e-4.
    assert estimate == pytest.approx(1 / 3, abs=2e-3)
    assert np.mean(loss) == pytest.approx(1 / 2, abs=2e-3)  # unweighted: E_q, not E_p


@pytest.mark.parametrize("loss_shape, weight_shape", [((3,), (2,)), ((3, 2), (3, 1)), ((0,), (0,)), ((), (1,))])
def test_weighted_loss_rejects_mismatched_shapes(loss_shape, weight_shape):
    with pytest.raises(ValueError, match="weight must be \\[B\\]"):
        weighted_loss(np.ones(loss_shape), np.ones(weight_shape))


def test_weighted_loss_with_torch_keeps_the_graph():
    torch = pytest.importorskip("torch")
    prediction = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    loss = weighted_loss(prediction ** 2, np.array([1.0, 0.5, 2.0], np.float32))
    loss.backward()
    assert loss.item() == pytest.approx((1 + 2 + 18) / 3)
    np.testing.assert_allclose(prediction.grad.numpy(), [2 / 3, 2 / 3, 4.0])


def test_a_generation_is_sent_only_when_set_and_checked():
    assert decode(encode_report(3))[1] == {"step": "3"}
    assert decode(encode_report(3, generation=12))[1] == {"step": "3", "generation": "12"}
    for bad in (-1, 1 << 64, 2.0, True):
        with pytest.raises(ValueError, match=r"generation must be an integer in \[0, "):
            encode_report(3, generation=bad)


def test_resume_starts_a_new_generation_that_later_reports_carry(sockets, context):
    endpoint = f"ipc://{sockets}/resume.sock"
    pull = context.socket(zmq.PULL)
    pull.bind(endpoint)
    try:
        with Reporter(endpoint, context=context) as reporter:
            assert reporter.resume(40, generation=7) == 7
            reporter.report(41)
            chosen = reporter.resume(40)
            assert chosen == reporter.generation and chosen > 7  # milliseconds since the epoch
            got = []
            for _ in range(3):
                assert pull.poll(RECV_TIMEOUT_MS), "a report did not arrive"
                got.append(decode(pull.recv())[1])
        assert got == [{"step": "40", "generation": "7"}, {"step": "41", "generation": "7"},
                       {"step": "40", "generation": str(chosen)}]
    finally:
        pull.close(linger=0)
