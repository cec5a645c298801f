"""PyTorch integration: torch views of received arrays, an IterableDataset over the daemon's output,
and the step report of a torch.distributed run.

Importing this module needs torch; ``import noised_client`` does not.

The daemon PUSHes each batch to one of its connected PULL peers in turn. A `NoisedDataset` opens one
PULL socket per process that iterates it: per DataLoader worker, or the main process with
``num_workers=0``. So the daemon, not a sampler, spreads batches over workers and over the ranks of
a distributed run; no batch reaches two peers, and no peer is guaranteed an equal share.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Iterator, Mapping, Sequence

import ml_dtypes
import numpy as np
import torch
import torch.utils.data

from .client import Consumer, _curve_keys, endpoint_list
from .feedback import Reporter
from .keys import ClientKeys

__all__ = ["METADATA_KEYS", "NoisedDataset", "report_step", "resume_step", "to_device", "to_torch"]

# numpy dtypes torch.from_numpy does not know: the integer type of the same width to carry the bits.
_REINTERPRETED: dict[np.dtype, tuple[np.dtype, torch.dtype]] = {
    np.dtype(ml_dtypes.bfloat16): (np.dtype(np.int16), torch.bfloat16),
    np.dtype(ml_dtypes.float8_e4m3fn): (np.dtype(np.uint8), torch.float8_e4m3fn),
    np.dtype(ml_dtypes.float8_e5m2): (np.dtype(np.uint8), torch.float8_e5m2),
}

#: Entries a `NoisedDataset` adds to each batch beside its tensors.
METADATA_KEYS = ("step", "seq", "metadata")

# While waiting without a timeout, how often a DataLoader worker checks that its parent still runs.
_PARENT_CHECK_MS = 1000


def to_torch(array: np.ndarray, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A torch tensor over the same memory as ``array`` (no copy).

    ``ml_dtypes.bfloat16`` arrays become ``torch.bfloat16`` (and ml_dtypes' float8 types torch's),
    by viewing the bytes as integers, so no value is converted. ``dtype`` reinterprets the bytes as
    another dtype of the same width, e.g. ``torch.bfloat16`` for raw bf16 bits held as uint16/int16.
    Received arrays are read-only views of the message: the tensor must not be written in place.
    """
    array = np.asarray(array)
    carrier, torch_dtype = _REINTERPRETED.get(array.dtype, (None, None))
    if carrier is not None:
        array = array.view(carrier)
    with warnings.catch_warnings():
        # Frames are read-only; the tensors are views the caller must not write in place.
        warnings.filterwarnings("ignore", message=".*not writable.*")
        tensor = torch.from_numpy(array)
    if dtype is not None:
        if dtype.itemsize != tensor.element_size():
            raise ValueError(f"to_torch: cannot view {array.dtype} ({array.dtype.itemsize} bytes) as {dtype} "
                             f"({dtype.itemsize} bytes): dtype must have the same width")
        return tensor.view(dtype)
    return tensor.view(torch_dtype) if torch_dtype is not None else tensor


def to_device(sample: Mapping[str, Any], device: torch.device | str, *, non_blocking: bool = True) -> dict:
    """The sample with its tensors moved to ``device`` (other entries unchanged).

    For a DataLoader with workers: move each batch in the training loop, after the loader (with
    ``pin_memory=True`` the copy to the GPU can overlap compute), since CUDA is not for workers.
    To a CUDA device, a tensor not yet in pinned memory is first copied into torch's pool of pinned
    buffers (reused once the transfer is done), so the transfer is a DMA that can overlap compute.
    """
    device = torch.device(device)
    pin = non_blocking and device.type == "cuda" and torch.cuda.is_available()

    def move(tensor: torch.Tensor) -> torch.Tensor:
        if pin and tensor.device.type == "cpu" and not tensor.is_pinned():
            tensor = tensor.pin_memory()
        return tensor.to(device, non_blocking=non_blocking)

    return {key: move(value) if isinstance(value, torch.Tensor) else value for key, value in sample.items()}


class NoisedDataset(torch.utils.data.IterableDataset):
    """The daemon's output as an endless stream of batches for ``torch.utils.data.DataLoader``.

    ``endpoint`` is the daemon's output endpoint, or a list of several daemons' (each process's
    socket connects to all of them and fair-queues their batches).

    Each batch is a dict: every tensor of the message as a torch tensor (``z_t``, ``eps``, ``sigma``,
    ``noise_id``, ``weight``, ``z_0`` and the producer's own), plus ``step`` and ``seq`` (ints, the
    daemon's ``noised.step`` and ``noised.seq``; None if absent) and ``metadata`` (every metadata
    string of the message). Use it with ``DataLoader(dataset, batch_size=None, ...)``: the daemon's
    batches are already batches. A message with a tensor named like one of `METADATA_KEYS` is an
    error.

    The socket opens in ``__iter__``, in the process that iterates (each DataLoader worker has its
    own), never in ``__init__``: the dataset can be built in the main process and sent to workers by
    fork or spawn. It closes when the iteration ends, is closed or is garbage collected, except when
    it ends at ``max_batches``: then it stays open for the next iteration in the same process (an
    epoch of persistent workers), because a closing PULL socket drops the batches already pushed to
    it. `close` closes such a socket.

    ``max_batches`` bounds one iteration (an epoch) of the whole DataLoader of this process: each of
    its ``num_workers`` workers yields its share (``max_batches // num_workers``, one more for the
    first ``max_batches % num_workers``). None (the default) iterates forever.

    ``timeout_ms`` is how long to wait for a batch: None (the default) waits as long as it takes,
    as a trainer wants. If no batch arrives in time, ``on_timeout="raise"`` raises TimeoutError and
    ``on_timeout="stop"`` ends the iteration, e.g. to stop once the daemon has no more input.

    ``device`` moves each batch's tensors there (``non_blocking=True``) when the dataset is iterated
    in the main process (``num_workers=0`` or plain ``for batch in dataset``); DataLoader workers
    can only use ``"cpu"``: there, use `to_device` on the loader's output.

    ``hwm`` is the socket's receive high-water mark: batches queued per process beyond the
    DataLoader's own prefetching. The CURVE options are those of `Consumer`.

    ``keep_freed_memory`` is `Consumer`'s: None (the default) turns it on in DataLoader workers,
    which only receive, and leaves the main process's allocator alone.
    """

    def __init__(self, endpoint: str | Sequence[str], *, max_batches: int | None = None, timeout_ms: int | None = None,
                 on_timeout: str = "raise", device: torch.device | str | None = None, hwm: int = 4,
                 curve_server_key: str | None = None, curve_public_key: str | None = None,
                 curve_secret_key: str | None = None, keys: ClientKeys | None = None,
                 keep_freed_memory: bool | None = None):
        super().__init__()
        if max_batches is not None and (isinstance(max_batches, bool) or not isinstance(max_batches, int)
                                        or max_batches < 0):
            raise ValueError(f"max_batches must be None or an integer >= 0, got {max_batches!r}")
        if timeout_ms is not None and (not isinstance(timeout_ms, int) or timeout_ms < 0):
            raise ValueError(f"timeout_ms must be None (wait forever) or an integer >= 0, got {timeout_ms!r}")
        if on_timeout not in ("raise", "stop"):
            raise ValueError(f"on_timeout must be 'raise' or 'stop', got {on_timeout!r}")
        if hwm < 1:
            raise ValueError(f"hwm must be at least 1, got {hwm}")
        endpoint_list(endpoint)  # a bad endpoint fails here, in the main process
        self.endpoint = endpoint
        self.max_batches = max_batches
        self.timeout_ms = timeout_ms
        self.on_timeout = on_timeout
        self.device = None if device is None else torch.device(device)
        self.hwm = hwm
        self.keep_freed_memory = keep_freed_memory
        # Checked here, in the main process, so a wrong key fails before any worker starts.
        curve = _curve_keys(curve_server_key, curve_public_key, curve_secret_key, keys)
        self._curve_server_key, self._keys = (None, None) if curve is None else curve
        self._parked: Consumer | None = None  # a socket kept open after an iteration ended at max_batches
        self._parked_pid: int | None = None

    def __getstate__(self) -> dict:
        # A socket belongs to its process: a worker (spawned or forked) opens its own.
        state = self.__dict__.copy()
        state["_parked"], state["_parked_pid"] = None, None
        return state

    def __iter__(self) -> Iterator[dict]:
        worker = torch.utils.data.get_worker_info()
        if worker is not None and self.device is not None and self.device.type != "cpu":
            raise ValueError(f"NoisedDataset(device={str(self.device)!r}) in DataLoader worker {worker.id}: "
                             "workers cannot use that device; leave device unset and move each batch "
                             "after the loader with noised_client.torch.to_device (pin_memory=True)")
        limit = self._share_of_max_batches(worker)
        if limit == 0:
            return
        consumer = self._open(worker)
        parent = os.getppid() if worker is not None else None
        reached_limit = False
        try:
            count = 0
            while limit is None or count < limit:
                batch = self._receive(consumer, worker, parent)
                if batch is None:
                    return
                yield self._sample(batch)
                count += 1
            reached_limit = True
        finally:
            if reached_limit:
                self._park(consumer)
            else:
                consumer.close()

    def _share_of_max_batches(self, worker) -> int | None:
        if self.max_batches is None or worker is None:
            return self.max_batches
        share, remainder = divmod(self.max_batches, worker.num_workers)
        return share + (1 if worker.id < remainder else 0)

    def _open(self, worker) -> Consumer:
        parked, self._parked = self._parked, None
        if parked is not None and self._parked_pid == os.getpid():
            return parked
        # A parked socket copied in by fork is the parent's: leave it alone.
        keep = worker is not None if self.keep_freed_memory is None else self.keep_freed_memory
        return Consumer(self.endpoint, hwm=self.hwm, as_torch=True, curve_server_key=self._curve_server_key,
                        keys=self._keys, keep_freed_memory=keep)

    def _park(self, consumer: Consumer) -> None:
        if self._parked is not None and self._parked_pid == os.getpid():
            consumer.close()  # two iterations ended at once in this process: one socket is enough
            return
        self._parked, self._parked_pid = consumer, os.getpid()

    def _receive(self, consumer: Consumer, worker, parent: int | None):
        """The next batch; None to end the iteration (timeout with on_timeout="stop", or the
        worker's parent is gone)."""
        if self.timeout_ms is not None:
            batch = consumer.recv(timeout_ms=self.timeout_ms)
            if batch is None and self.on_timeout == "raise":
                where = f" in DataLoader worker {worker.id} of {worker.num_workers}" if worker is not None else ""
                raise TimeoutError(f"no batch from {self.endpoint} within {self.timeout_ms} ms{where}: "
                                   "is noised running, fed, and is this its output endpoint?")
            return batch
        if parent is None:
            return consumer.recv()
        while True:
            batch = consumer.recv(timeout_ms=_PARENT_CHECK_MS)
            if batch is not None:
                return batch
            if os.getppid() != parent:
                return None  # the DataLoader's process died; its worker must not wait on

    def _sample(self, batch) -> dict:
        for key in METADATA_KEYS:
            if key in batch:
                raise ValueError(f"a batch from {self.endpoint} has a tensor named {key!r}, which NoisedDataset "
                                 f"uses for metadata ({', '.join(METADATA_KEYS)}): rename it in the producer")
        sample: dict[str, Any] = dict(batch)
        if self.device is not None:
            sample = to_device(sample, self.device)
        sample["step"], sample["seq"], sample["metadata"] = batch.step, batch.seq, dict(batch.metadata)
        return sample

    def close(self) -> None:
        """Close the socket an iteration ended at ``max_batches`` left open in this process."""
        parked, self._parked = self._parked, None
        if parked is not None and self._parked_pid == os.getpid():
            parked.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn down zmq already
            pass


def report_step(reporter: Reporter | None, step: int, sigma: Any = None, loss: Any = None, *,
                timeout_ms: int | None = None) -> None:
    """Report the global training step to the daemon once for all ranks of a torch.distributed run.

    Every rank calls it after each optimizer step with the same ``step`` (the count of optimizer
    steps, not of the rank's own batches: the daemon does not give ranks equal shares). With
    ``sigma`` and ``loss`` (this rank's per-sample values, ``[B]``, B may differ between ranks) it
    is a collective: rank 0 gathers every rank's pairs and sends them in one report, so an adaptive
    schedule sees all samples. Only rank 0's ``reporter`` is used; other ranks may pass None, but
    give every rank a `Reporter` if you call `Reporter.resume`, which all ranks must call. Raises
    ValueError on every rank if the ranks' steps differ. Without torch.distributed (or with one
    rank) it is ``reporter.report(step, sigma, loss)``.
    """
    import torch.distributed as dist

    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    rank = dist.get_rank() if distributed else 0
    if (sigma is None) != (loss is None):
        raise ValueError(f"report_step: sigma and loss go together, {'loss' if loss is None else 'sigma'} is missing")
    if distributed and sigma is not None:
        sigma, loss = _gather_pairs(step, sigma, loss)
    if rank == 0:
        if reporter is None:
            raise ValueError("report_step: rank 0 needs a Reporter")
        reporter.report(step, sigma, loss, timeout_ms=timeout_ms)


def resume_step(reporter: Reporter | None, step: int, *, generation: int | None = None,
                timeout_ms: int | None = None) -> int:
    """`Reporter.resume` for a torch.distributed run where only rank 0 holds a `Reporter` (as
    with `report_step`, or a PUB reporter only one process can bind).

    Every rank calls it with the checkpoint's ``step`` (it is a collective); rank 0's generation
    (``generation`` or `new_generation()`) is chosen, every rank's reporter (where there is one)
    adopts it, and rank 0 sends the resume report. Returns the generation.
    """
    import torch.distributed as dist

    from .feedback import _agreed_generation, _check_counter, new_generation

    distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
    rank = dist.get_rank() if distributed else 0
    chosen = _check_counter(_agreed_generation(new_generation() if generation is None else generation),
                            "generation", 1 << 64)
    if reporter is not None:
        reporter.generation = chosen
    if rank == 0:
        if reporter is None:
            raise ValueError("resume_step: rank 0 needs a Reporter")
        reporter.report(step, timeout_ms=timeout_ms)
    return chosen


def _gather_pairs(step: int, sigma: Any, loss: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Every rank's (sigma, loss), concatenated in rank order, on every rank; checks the steps agree."""
    import torch.distributed as dist

    device = loss.device if isinstance(loss, torch.Tensor) else torch.device("cpu")
    sigma, loss = ((v.detach() if isinstance(v, torch.Tensor) else to_torch(np.asarray(v)))
                   .to(device=device, dtype=torch.float32).reshape(-1) for v in (sigma, loss))
    world = dist.get_world_size()
    # A rank whose pairs do not match sends size -1, so every rank raises instead of some hanging.
    size = sigma.numel() if sigma.numel() == loss.numel() else -1
    header = torch.tensor([int(step), size], dtype=torch.int64, device=device)
    headers = [torch.empty_like(header) for _ in range(world)]
    dist.all_gather(headers, header)
    steps = [int(h[0]) for h in headers]
    if len(set(steps)) != 1:
        raise ValueError(f"report_step: the ranks report different steps {steps} (rank order): the step must "
                         "be the optimizer step count, the same on every rank, not a count of the rank's batches")
    mismatched = [r for r, h in enumerate(headers) if int(h[1]) < 0]
    if mismatched:
        raise ValueError(f"report_step: sigma and loss differ in length on rank(s) {mismatched}")
    pairs = torch.stack([sigma, loss])
    sizes = [int(h[1]) for h in headers]
    padded = torch.zeros((2, max(sizes)), dtype=torch.float32, device=device)
    padded[:, : pairs.shape[1]] = pairs
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    joined = torch.cat([part[:, :size] for part, size in zip(gathered, sizes)], dim=1)
    return joined[0], joined[1]
