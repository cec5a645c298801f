"""The trainer's side of the feedback channel: loss reports to the daemon, and the weighted loss.

A report is one ZeroMQ frame holding a safetensors file: metadata ``step`` (a decimal integer),
optionally ``generation`` (a decimal integer, 0 when absent) and, optionally, ``sigma`` and ``loss``
(F32 ``[N]``, one value per sample). The daemon uses the step to drive its curriculum
(``steps.source: feedback``) and the (sigma, loss) pairs to adapt its proposal of sigma
(``schedule.adaptive``). Within one generation the daemon follows the largest step reported; a
report with a higher generation (a trainer resumed from a checkpoint) sets the step to its own,
back or forth; reports of an earlier generation are ignored.
"""

from __future__ import annotations

import numbers
import time
from typing import Any

import numpy as np
import zmq

from .codec import encode
from .sending import send_within

__all__ = ["Reporter", "encode_report", "new_generation", "weighted_loss"]

_PATTERNS = {"push": zmq.PUSH, "pub": zmq.PUB}


def _as_f32_vector(values: Any, name: str) -> np.ndarray:
    """A 1-D float32 numpy copy of a numpy array, torch tensor (any device, any dtype) or list."""
    if hasattr(values, "detach"):  # torch: leave the graph and the device; BF16 has no numpy dtype
        values = values.detach().float().cpu().numpy()
    array = np.asarray(values)
    if array.dtype.kind not in "fiu":
        raise ValueError(f"report: {name} must hold real numbers, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if array.ndim != 1:
        raise ValueError(f"report: {name} must be one value per sample, shape [N], got shape {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"report: {name} holds non-finite values at {np.flatnonzero(~np.isfinite(array))[:8].tolist()}")
    return array


def _check_counter(value: Any, name: str, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < limit:
        raise ValueError(f"report: {name} must be an integer in [0, {limit}), got {value!r}")
    return int(value)


def encode_report(step: int, sigma: Any = None, loss: Any = None, *, generation: int = 0) -> bytes:
    """One feedback message: metadata ``step`` (and ``generation`` when not 0), and ``sigma`` and
    ``loss`` F32 ``[N]`` if given.

    Raises ValueError for what the daemon would reject: a step or generation that is not an
    integer >= 0, only one of sigma and loss, lengths that differ or are 0, sigma outside [0, 1],
    non-finite values.
    """
    step = _check_counter(step, "step", 1 << 63)
    generation = _check_counter(generation, "generation", 1 << 64)
    if (sigma is None) != (loss is None):
        missing = "loss" if loss is None else "sigma"
        raise ValueError(f"report: sigma and loss go together, {missing} is missing")
    tensors = {}
    if sigma is not None:
        sigma_f32, loss_f32 = _as_f32_vector(sigma, "sigma"), _as_f32_vector(loss, "loss")
        if len(sigma_f32) != len(loss_f32) or len(sigma_f32) == 0:
            raise ValueError(f"report: sigma and loss need the same length >= 1, got {len(sigma_f32)} and {len(loss_f32)}")
        outside = (sigma_f32 < 0) | (sigma_f32 > 1)
        if np.any(outside):
            raise ValueError(f"report: sigma must lie in [0, 1], got {sigma_f32[outside][:8].tolist()}")
        tensors = {"sigma": sigma_f32, "loss": loss_f32}
    metadata = {"step": str(step)}
    if generation:
        metadata["generation"] = str(generation)
    return encode(tensors, metadata)


def new_generation() -> int:
    """A generation above any taken earlier this way: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def _agreed_generation(generation: int) -> int:
    """Rank 0's generation on every rank when torch.distributed is initialized, else ``generation``."""
    try:
        import torch.distributed as dist
    except ImportError:
        return generation
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return generation
    chosen = [generation]
    dist.broadcast_object_list(chosen, src=0)
    return int(chosen[0])


class Reporter:
    """Sends loss reports to one or more noised daemons' feedback endpoints.

    ``pattern="push"`` (the default) matches a daemon with ``feedback.pattern: pull``: usually the
    daemon binds and the reporter connects; with several daemons connected to one binding PUSH
    socket, each report reaches only one of them. ``pattern="pub"`` matches daemons with
    ``feedback.pattern: sub`` and ``feedback.bind: false``: bind the reporter (``bind=True``) and every
    connected daemon receives every report. A PUB socket drops reports while no daemon is
    connected (and at the high-water mark); a PUSH socket queues up to ``hwm`` reports and then
    blocks in `report` (raising TimeoutError after ``timeout_ms`` if one is given).
    On close, queued reports get up to ``linger_ms`` to leave.
    """

    def __init__(self, endpoint: str, *, bind: bool = False, pattern: str = "push", hwm: int = 1000,
                 linger_ms: int = 2000, context: zmq.Context | None = None, generation: int = 0):
        if pattern not in _PATTERNS:
            raise ValueError(f"Reporter pattern must be one of {sorted(_PATTERNS)}, got {pattern!r}")
        self.endpoint = endpoint
        self.pattern = pattern
        #: Sent with every report; `resume` raises it. Save it in checkpoints beside the step.
        self.generation = _check_counter(generation, "generation", 1 << 64)
        self._linger_ms = linger_ms
        context = context or zmq.Context.instance()
        self._socket = context.socket(_PATTERNS[pattern])
        self._socket.setsockopt(zmq.SNDHWM, hwm)
        try:
            if bind:
                self._socket.bind(endpoint)
            else:
                self._socket.connect(endpoint)
        except zmq.ZMQError:
            self._socket.close(linger=0)
            raise

    def report(self, step: int, sigma: Any = None, loss: Any = None, *, timeout_ms: int | None = None) -> None:
        """Send one report: the trainer's step and, optionally, each sample's sigma and loss.

        sigma and loss are 1-D numpy arrays, torch tensors or lists (converted to F32); report the
        per-sample losses before any importance weighting, since the daemon adapts to the raw loss.
        """
        self.send_bytes(encode_report(step, sigma, loss, generation=self.generation), timeout_ms=timeout_ms)

    def resume(self, step: int, *, generation: int | None = None, timeout_ms: int | None = None) -> int:
        """Tell the daemon the trainer resumed from a checkpoint at ``step``: it moves the curriculum
        back (or forward) to that step, and ignores later-arriving reports of the run before.

        This starts a new generation, ``generation`` or, by default, `new_generation()`; every later
        report carries it. It must exceed every generation the daemon has seen (the default does,
        while clocks move forward). Under torch.distributed every rank must call ``resume`` (it is
        a collective): rank 0's generation is broadcast so all ranks report the same one, and the
        first of their resumes to arrive moves the step. Noise ids never repeat on a resume: the
        daemon's counters only move forward. Returns the generation.
        """
        chosen = _agreed_generation(new_generation() if generation is None else generation)
        self.generation = _check_counter(chosen, "generation", 1 << 64)
        self.report(step, timeout_ms=timeout_ms)
        return self.generation

    def send_bytes(self, message: bytes, *, timeout_ms: int | None = None) -> None:
        """Send an already encoded report as one frame."""
        send_within(self._socket, [message], timeout_ms, f"a report to {self.endpoint}")

    def close(self) -> None:
        self._socket.close(linger=self._linger_ms)

    def __enter__(self) -> "Reporter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def weighted_loss(loss, weight):
    """mean(weight · loss): the training objective under the daemon's adaptive proposal.

    With ``schedule.adaptive`` the daemon draws sigma from a proposal q that favours the noise levels
    where the loss is high, not from the curriculum's p. Each batch carries ``weight`` = p(σ)/q(σ),
    and E_q[weight · loss] = E_p[loss]: the weighted mean is an unbiased estimate of the objective
    the curriculum defines, with lower variance, so gradients point where they would under p.
    (Before the proposal warms up, and with adaptation off, the weights are exactly 1.)

    ``loss`` is per sample, shape ``[B]``, or per element ``[B, ...]`` (then the mean runs over all
    elements, each sample's elements weighted by its weight). numpy arrays give a numpy float64;
    a torch ``loss`` gives a torch scalar that keeps its graph (``weight`` may be numpy or torch and is
    moved to the loss's device and dtype).
    """
    if hasattr(loss, "detach"):
        import torch

        weight = weight if hasattr(weight, "detach") else torch.from_numpy(np.array(weight, np.float32))
        weight = weight.to(device=loss.device, dtype=loss.dtype)
        _check_shapes(tuple(loss.shape), tuple(weight.shape))
        return (weight.reshape((-1,) + (1,) * (loss.dim() - 1)) * loss).mean()
    loss = np.asarray(loss, np.float64)
    weight = np.asarray(weight, np.float64)
    _check_shapes(loss.shape, weight.shape)
    return np.mean(weight.reshape((-1,) + (1,) * (loss.ndim - 1)) * loss)


def _check_shapes(loss_shape: tuple, weight_shape: tuple) -> None:
    if len(weight_shape) != 1 or len(loss_shape) < 1 or loss_shape[0] != weight_shape[0] or weight_shape[0] == 0:
        raise ValueError(f"weighted_loss: weight must be [B] and loss [B, ...] with the same B >= 1, "
                         f"got weight {list(weight_shape)} and loss {list(loss_shape)}")
