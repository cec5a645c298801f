"""Fixtures for the end-to-end tests: the noised binary and a factory of running daemons."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.harness import Daemon, noised_binary, socket_dir


@pytest.fixture(scope="session")
def noised_bin() -> Path:
    return noised_binary()


@pytest.fixture
def daemon(tmp_path, noised_bin):
    """Factory: `daemon(overrides, name=..., env=..., nofile=(soft, hard))` writes a config into
    tmp_path/name, starts the binary (under that descriptor limit, if given), and returns it once it
    logged msg=ready. Daemons still running at teardown are killed."""
    started: list[Daemon] = []

    def start(overrides: dict | None = None, *, name: str = "daemon", env: dict | None = None,
              nofile: tuple[int, int] | None = None) -> Daemon:
        instance = Daemon(noised_bin, tmp_path / name, overrides, env, nofile)
        started.append(instance)
        return instance.start()

    yield start
    for instance in started:
        instance.kill()


@pytest.fixture
def sockets(tmp_path) -> Path:
    """A directory for extra ipc endpoints (e.g. feedback) whose paths fit in sun_path."""
    directory = socket_dir(tmp_path / "sockets")
    directory.mkdir(exist_ok=True)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)
