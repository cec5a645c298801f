"""End-to-end: examples/train_coupling.py trains one model with `schedule.coupling` off and on."""

import math
import os
import re
import subprocess
import sys

import pytest

from tests.harness import REPO_ROOT

pytest.importorskip("torch")

EXAMPLES = REPO_ROOT / "clients" / "python" / "examples"
RUN_TIMEOUT_S = 180
FIGURES = ("target_variance", "transport_cost", "moved", "final_loss", "one_step_gap", "mode_distance_1",
           "mode_distance_32")


def run_example(noised_bin, *arguments) -> dict[str, dict[str, float]]:
    environment = dict(os.environ, PYTHONPATH=str(REPO_ROOT / "clients" / "python"))
    try:
        finished = subprocess.run(
            [sys.executable, str(EXAMPLES / "train_coupling.py"), "--spawn-daemon", str(noised_bin), *arguments],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=environment)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"train_coupling.py did not finish within {RUN_TIMEOUT_S} s: {error.stdout!r}")
    output = finished.stdout + finished.stderr
    assert finished.returncode == 0, output
    assert len(re.findall(r'noised \(\w+\) exited with 0: .*msg="?stopped', finished.stdout)) == 3, output
    results = {}
    for line in finished.stdout.splitlines():
        if line.startswith("result "):
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            results[fields.pop("method")] = {name: float(fields[name]) for name in FIGURES}
    return results, output


def test_coupling_lowers_the_transport_cost_and_the_loss_of_the_same_training(noised_bin):
    results, output = run_example(noised_bin, "--steps", "200", "--final-window", "50", "--print-every", "0",
                                  "--methods", "none,assignment,knn", "--seed", "5")
    assert set(results) == {"none", "assignment", "knn"}, output
    for method, figures in results.items():
        assert all(math.isfinite(value) for value in figures.values()), (method, output)
    none, assignment, knn = results["none"], results["assignment"], results["knn"]
    assert none["moved"] == 0 and assignment["moved"] > 0.5 and knn["moved"] > 0.5, output
    # Same z_0 and the same candidate streams in every run: the assignment never pairs a batch at a
    # higher total cost than the identity, and knn's candidates include each sample's own stream.
    assert assignment["transport_cost"] <= none["transport_cost"], output
    assert knn["transport_cost"] <= none["transport_cost"], output
    assert assignment["target_variance"] < none["target_variance"], output
    # Deterministic with the fixed seed (one torch thread); the margin is over tenfold at this seed,
    # a coupling that did nothing would leave the two losses about equal.
    assert assignment["final_loss"] < 0.5 * none["final_loss"], output
