"""End-to-end: state across restarts, the feed/tap/check-config commands, and clean shutdown."""

import json
import signal
import subprocess

import ml_dtypes
import numpy as np
import pytest

from noised_client import Consumer, Producer, reference
from tests import messages
from tests.exchange import SEND_TIMEOUT_MS, exchange, receive
from tests.harness import default_config, merge, run_cli, socket_dir, write_config

TOOL_TIMEOUT_S = 60


def test_state_survives_a_restart(daemon, tmp_path):
    instance, seed = 3, 555
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    noised = daemon({"seed": seed, "instance": instance, "steps": {"batches_per_step": 2},
                     "state_dir": str(state_dir)})

    first = exchange(noised, [messages.good_batch(i) for i in range(3)], lockstep=True)
    stopped = noised.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert (stopped.count("received"), stopped.count("sent"), stopped.count("rejected")) == (3, 3, 0)
    state = json.loads((noised.state_dir / "state.json").read_text())
    assert state["version"] == 1
    assert (state["batches"], state["samples"], state["seq"]) == (3, 6, 3)

    noised.start()
    second = exchange(noised, [messages.good_batch(10 + i) for i in range(2)], lockstep=True)
    assert noised.stop(signal.SIGINT).returncode == 0

    outputs = first + second
    assert [got.seq for got in outputs] == [0, 1, 2, 3, 4]
    assert [got.step for got in outputs] == [0, 0, 1, 1, 2]
    ids = np.concatenate([got["noise_id"] for got in outputs])
    np.testing.assert_array_equal(ids, np.uint64(instance << 48) + np.arange(10, dtype=np.uint64))
    eps = reference.noise_batch(seed, ids[6:], 4)
    np.testing.assert_allclose(np.concatenate([got["eps"] for got in second]), eps, rtol=0, atol=5e-6)
    state = json.loads((noised.state_dir / "state.json").read_text())
    assert (state["batches"], state["samples"], state["seq"]) == (5, 10, 5)


def tap_command(noised_bin, endpoint, count):
    return [str(noised_bin), "tap", "--endpoint", endpoint, "--count", str(count),
            "--seconds", str(TOOL_TIMEOUT_S), "--verify"]


def finish(process: subprocess.Popen) -> tuple[str, str]:
    """Wait (bounded) for a tool to exit; kill it if it does not."""
    try:
        return process.communicate(timeout=TOOL_TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def tap_summary(stdout: str, stderr: str) -> str:
    lines = [line for line in (stdout + "\n" + stderr).splitlines() if line.startswith("tap:")]
    assert lines, f"no `tap:` summary line; stdout:\n{stdout}\nstderr:\n{stderr}"
    return lines[-1]


def test_feed_through_the_daemon_reaches_a_consumer(daemon, noised_bin):
    seed = 1234
    noised = daemon({"seed": seed})
    with Consumer(noised.output_endpoint) as consumer:
        fed = run_cli(noised_bin, "feed", "--endpoint", noised.acked_endpoint, "--shape", "2,4,8,8",
                      "--dtype", "bf16", "--count", "5", "--seed", "3", timeout_s=TOOL_TIMEOUT_S)
        assert fed.returncode == 0, fed.stderr
        assert "5 batches" in fed.stdout and "5 acknowledged, 0 rejected" in fed.stdout, fed.stdout
        outputs = receive(consumer, 5)
    assert sorted(got.seq for got in outputs) == [0, 1, 2, 3, 4]
    for got in outputs:
        assert got["z_t"].shape == (2, 4, 8, 8) and got["z_t"].dtype == np.dtype(ml_dtypes.bfloat16)
        eps = reference.noise_batch(seed, got["noise_id"], 4 * 8 * 8).reshape(2, 4, 8, 8)
        reference_bf16 = reference.f32_to_bf16(eps.astype(np.float32)).astype(np.float64)
        # One bf16 step (2^-7 relative) covers a few f32 ulps of difference before rounding.
        np.testing.assert_allclose(got["eps"].astype(np.float64), reference_bf16, rtol=2**-7, atol=1e-6)


@pytest.mark.parametrize("include_clean,frames", [(True, None), (False, None), (True, "sorted"), (False, "independent")])
def test_producer_through_the_daemon_passes_tap_verify(daemon, noised_bin, include_clean, frames):
    overrides = {"output": {"include_clean": include_clean}}
    if frames:  # σ per frame on axis 1 of [B, 4, 8], the first frame clean half the time
        overrides["schedule"] = {"frames": {"axis": 1, "mode": frames, "condition": [{"weight": 1}, {"weight": 1, "first": 1}]}}
    noised = daemon(overrides)
    tap = subprocess.Popen(tap_command(noised_bin, noised.output_endpoint, 4), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with Producer(noised.acked_endpoint) as producer:
            for index in range(4):
                producer.send(messages.good_batch(index, batch=3, shape=(4, 8)), timeout_ms=SEND_TIMEOUT_MS)
    finally:
        stdout, stderr = finish(tap)
    assert tap.returncode == 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    summary = tap_summary(stdout, stderr)
    assert summary.startswith("tap: 4 batches") and "failed=0" in summary, summary


def test_tap_verify_fails_on_a_forged_eps(noised_bin, tmp_path):
    """tap --verify must recompute eps itself: a self-consistent batch with the wrong eps fails."""
    endpoint = f"ipc://{socket_dir(tmp_path)}/forged.sock"
    seed, ids = 1234, np.array([0, 1], np.uint64)
    z0 = np.random.default_rng(4).standard_normal((2, 16)).astype(np.float32)
    sigma = reference.uniform_sigma(reference.sigma_uniforms(seed, ids)[0])
    forged_eps = (reference.noise_batch(seed, ids, 16) + 0.5).astype(np.float32)
    batch = {"z_t": reference.noised_z_t(z0, sigma, forged_eps), "eps": forged_eps, "sigma": sigma,
             "noise_id": ids, "z_0": z0}
    metadata = {"noised.step": "0", "noised.seq": "0", "noised.seed": str(seed), "noised.protocol": "1"}
    with Producer(endpoint, acknowledged=False, bind=True) as producer:
        tap = subprocess.Popen(tap_command(noised_bin, endpoint, 1), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            producer.send(batch, metadata, timeout_ms=SEND_TIMEOUT_MS)
        finally:
            stdout, stderr = finish(tap)
    assert tap.returncode != 0, f"stdout:\n{stdout}\nstderr:\n{stderr}"
    assert "failed=1" in tap_summary(stdout, stderr)


BRIEF_EXAMPLE_YAML = """\
seed: 1234
instance: 0
workers: 2
log_level: info
state_dir: {tmp}/state
input:  {{endpoint: "ipc://{tmp}/in.sock", bind: true, tensor: latents, high_water_mark: 16, max_message_bytes: 1073741824, reject_nonfinite: true}}
output: {{endpoint: "ipc://{tmp}/out.sock", bind: true, high_water_mark: 16, dtype: input, include_clean: false}}
steps: {{batches_per_step: 1}}
shutdown: {{drain_seconds: 10}}
schedule:
  sigma_min: 0.0
  sigma_max: 1.0
  interpolation: linear           # linear | cosine | hold
  curriculum:
    - {{at_step: 0, distribution: uniform}}
    - {{at_step: 100, distribution: logit_normal, mean: 0.0, std: 1.0}}
"""


def test_check_config_accepts_good_files(noised_bin, tmp_path):
    yaml_path = tmp_path / "example.yaml"
    yaml_path.write_text(BRIEF_EXAMPLE_YAML.format(tmp=tmp_path))
    json_path = write_config(tmp_path / "generated.yaml", default_config(tmp_path, tmp_path))
    for path in (yaml_path, json_path):
        checked = run_cli(noised_bin, "check-config", str(path))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.strip() == "ok"


@pytest.mark.parametrize("override,key_path", [
    ({"output": {"dtype": "f64"}}, "output.dtype"),
    ({"input": {"high_water_mark": "lots"}}, "input.high_water_mark"),
    ({"schedule": {"curriculum": [{"at_step": 0, "distribution": "uniform"},
                                  {"at_step": 10, "distribution": "bogus"}]}}, "distribution"),
])
def test_check_config_rejects_a_bad_key_naming_its_path(noised_bin, tmp_path, override, key_path):
    path = write_config(tmp_path / "bad.yaml", merge(default_config(tmp_path, tmp_path), override))
    checked = run_cli(noised_bin, "check-config", str(path))
    assert checked.returncode == 1
    message = checked.stdout + checked.stderr
    assert key_path in message and "ok" != checked.stdout.strip(), message
