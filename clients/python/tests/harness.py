"""Running the real noised binary from tests: config files, process lifecycle, logfmt logs, the CLI.

Every wait here is bounded; a daemon left running by a failed test is killed at teardown.
"""

from __future__ import annotations

import copy
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
READY_TIMEOUT_S = 20.0
STOP_GRACE_S = 15.0  # on top of the configured drain time
# sun_path holds 108 bytes; keep a margin for the socket file name.
MAX_SOCKET_DIR_CHARS = 90


def noised_binary() -> Path:
    """The daemon under test: $NOISED_BIN, else the release build in this repository."""
    path = Path(os.environ.get("NOISED_BIN", REPO_ROOT / ".build" / "release" / "noised"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"noised binary not found at {path}: run `make build` first (or set NOISED_BIN)", pytrace=False)
    return path


def parse_logfmt(line: str) -> dict[str, str]:
    """key=value pairs of one logfmt line; quoted values may contain spaces and \\" escapes."""
    fields = {}
    for match in re.finditer(r'(\w[\w.\-]*)=("(?:[^"\\]|\\.)*"|\S*)', line):
        key, value = match.group(1), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        fields[key] = value
    return fields


def merge(base: dict, overrides: dict) -> dict:
    """Deep merge of nested dicts; lists and scalars in overrides replace the base's."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def socket_dir(workdir: Path) -> Path:
    """workdir if ipc paths under it fit in sun_path, else a short directory under /tmp."""
    if len(str(workdir)) <= MAX_SOCKET_DIR_CHARS:
        return workdir
    return Path(tempfile.mkdtemp(prefix="noised-"))


def default_config(workdir: Path, sockets: Path) -> dict:
    return {
        "seed": 1234,
        "instance": 0,
        "workers": 2,
        "log_level": "info",
        "state_dir": None,
        "input": {
            "endpoint": f"ipc://{sockets}/in.sock",
            "acked_endpoint": f"ipc://{sockets}/acked.sock",
            "bind": True,
            "tensor": "latents",
            "high_water_mark": 16,
            "max_message_bytes": 1 << 30,
            "max_batch": 4096,
            "reject_nonfinite": True,
        },
        "output": {
            "endpoint": f"ipc://{sockets}/out.sock",
            "bind": True,
            "high_water_mark": 16,
            "dtype": "input",
            "include_clean": False,
        },
        "steps": {"batches_per_step": 1},
        "shutdown": {"drain_seconds": 10},
        # No fixed port in tests: a test that wants metrics asks for 127.0.0.1:0.
        "metrics": {"listen": None},
        "schedule": {
            "sigma_min": 0.0,
            "sigma_max": 1.0,
            "interpolation": "linear",
            "curriculum": [{"at_step": 0, "distribution": "uniform"}],
        },
    }


def write_config(path: Path, config: dict) -> Path:
    # JSON is a subset of YAML, so the daemon's YAML loader reads it as written.
    path.write_text(json.dumps(config, indent=2) + "\n")
    return path


@dataclass
class StopResult:
    returncode: int
    stderr: str
    summary: dict[str, str]  # the fields of the final `msg=stopped` line

    def count(self, key: str) -> int:
        return int(self.summary.get(key, "0"))


class Daemon:
    """One `noised run --config FILE` process; `start()` again after `stop()` restarts it."""

    def __init__(self, binary: Path, workdir: Path, overrides: dict | None = None, env: dict | None = None,
                 nofile: tuple[int, int] | None = None):
        self.binary = binary
        self.workdir = workdir
        self.env = env or {}
        self.nofile = nofile  # (soft, hard) RLIMIT_NOFILE the daemon starts with; None: this process's
        workdir.mkdir(parents=True, exist_ok=True)
        self._sockets = socket_dir(workdir)
        self.config = merge(default_config(workdir, self._sockets), overrides or {})
        self.config_path = write_config(workdir / "noised.yaml", self.config)
        self._process: subprocess.Popen | None = None
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader: threading.Thread | None = None

    @property
    def input_endpoint(self) -> str:
        return self.config["input"]["endpoint"]

    @property
    def acked_endpoint(self) -> str:
        return self.config["input"]["acked_endpoint"]

    @property
    def output_endpoint(self) -> str:
        return self.config["output"]["endpoint"]

    @property
    def state_dir(self) -> Path | None:
        state = self.config["state_dir"]
        return None if state is None else Path(state)

    def start(self) -> "Daemon":
        assert self._process is None or self._process.poll() is not None, "daemon already running"
        with self._changed:
            self._lines = []
        self._process = subprocess.Popen(
            [str(self.binary), "run", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **self.env}, preexec_fn=self._limit_descriptors if self.nofile else None,
        )
        self._reader = threading.Thread(target=self._read_stderr, args=(self._process,), daemon=True)
        self._reader.start()
        self.wait_for_log(lambda fields: fields.get("msg") == "ready", READY_TIMEOUT_S, "msg=ready")
        return self

    def _limit_descriptors(self) -> None:
        # In the child between fork and exec: only the limit changes, as under systemd's LimitNOFILE.
        resource.setrlimit(resource.RLIMIT_NOFILE, self.nofile)

    def _read_stderr(self, process: subprocess.Popen) -> None:
        for line in process.stderr:
            with self._changed:
                self._lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def stderr_text(self) -> str:
        with self._changed:
            return "\n".join(self._lines)

    def log_records(self) -> list[dict[str, str]]:
        with self._changed:
            return [parse_logfmt(line) for line in self._lines]

    def wait_for_log(self, predicate, timeout_s: float, what: str) -> dict[str, str]:
        """The first log record satisfying predicate; fails if the daemon exits or time runs out."""
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    fields = parse_logfmt(line)
                    if predicate(fields):
                        return fields
                seen = len(self._lines)
                remaining = deadline - time.monotonic()
                exited = self._process.poll() is not None and not self._reader.is_alive()
                if exited or remaining <= 0:
                    status = f"exited with {self._process.returncode}" if exited else f"no {what} after {timeout_s} s"
                    pytest.fail(f"noised {status}; stderr:\n" + "\n".join(self._lines[-40:]), pytrace=False)
                self._changed.wait(min(remaining, 0.2))

    def rewrite_config(self, overrides: dict) -> None:
        """Change the config file on disk (the running daemon sees it on SIGHUP)."""
        self.config = merge(self.config, overrides)
        write_config(self.config_path, self.config)

    def send_signal(self, sig: int) -> None:
        self._process.send_signal(sig)

    @property
    def pid(self) -> int:
        return self._process.pid

    def wait_exit(self, timeout_s: float) -> int:
        """Wait (bounded) for the process to end, e.g. after SIGKILL; its return code."""
        try:
            code = self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"noised did not exit within {timeout_s} s")
        self._reader.join(timeout=5)
        return code

    def stop(self, sig: int = signal.SIGTERM) -> StopResult:
        """Signal the daemon, wait (bounded) for it to drain and exit, and return how it ended."""
        process = self._process
        process.send_signal(sig)
        timeout = self.config["shutdown"]["drain_seconds"] + STOP_GRACE_S
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail(f"noised did not exit within {timeout} s of signal {sig}; stderr:\n{self.stderr_text()}")
        self._reader.join(timeout=5)
        stopped = [fields for fields in self.log_records() if fields.get("msg") == "stopped"]
        return StopResult(process.returncode, self.stderr_text(), stopped[-1] if stopped else {})

    def kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        if self._sockets != self.workdir:
            shutil.rmtree(self._sockets, ignore_errors=True)


def run_cli(binary: Path, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess:
    """Run a noised subcommand to completion (bounded), capturing its output as text."""
    try:
        return subprocess.run([str(binary), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"`noised {' '.join(args)}` did not finish within {timeout_s} s: {error.stderr!r}")
