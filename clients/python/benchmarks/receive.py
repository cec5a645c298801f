"""The Python consumer's receive rate for large batches over ipc, with and without memory reuse.

Each case runs in a fresh process (the allocator policy is process-wide): a producer process pushes
the same encoded batch N times, the consumer process receives and decodes each with `Consumer` and
reports its rate and its CPU (all its threads, libzmq's I/O thread included) per GB received.

  plain      Consumer(...)                          each message in fresh pages from glibc
  recv_into  socket.recv_into(one reused buffer)   libzmq still allocates, then copies
  reuse      Consumer(..., keep_freed_memory=True)  freed messages' memory serves the next

Usage: python3 clients/python/benchmarks/receive.py [--sizes 4,32,128] [--gigabytes 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODES = ("plain", "recv_into", "reuse")


def _produce(endpoint: str, size: int, count: int, hwm: int) -> None:
    import numpy as np
    import zmq

    from noised_client import encode

    message = zmq.Frame(encode({"z_t": np.ones(size // 4, np.float32)}))
    context = zmq.Context()
    push = context.socket(zmq.PUSH)
    push.setsockopt(zmq.SNDHWM, hwm)
    push.connect(endpoint)
    for _ in range(count):
        push.send(message, copy=False)
    push.close(linger=-1)
    context.term()


def _consume(mode: str, endpoint: str, size: int, count: int, hwm: int, results) -> None:
    import zmq

    from noised_client import Consumer

    consumer = Consumer(endpoint, bind=True, hwm=hwm, keep_freed_memory=(mode == "reuse"))
    producer = mp.get_context("spawn").Process(target=_produce, args=(endpoint, size, count, hwm))
    producer.start()
    socket = consumer._socket
    buffer = bytearray(size + (1 << 16))
    # The first message is warm-up (connection, first allocation); the rest are timed.
    if not socket.poll(60_000, zmq.POLLIN):
        raise TimeoutError(f"no message from the producer at {endpoint} in 60 s")
    receive_one = (lambda: socket.recv_into(buffer)) if mode == "recv_into" else (lambda: consumer.recv(60_000))
    receive_one()
    before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(count - 1):
        if receive_one() is None:
            raise TimeoutError(f"a message did not arrive within 60 s ({mode}, {size} bytes)")
    elapsed, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    producer.join(60)
    consumer.close()
    gigabytes = size * (count - 1) / 1e9
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    results.put({"mode": mode, "mib": size >> 20, "gb_per_s": gigabytes / elapsed, "cpu_s_per_gb": cpu / gigabytes,
                 "page_faults_per_message": (after.ru_minflt - before.ru_minflt) / (count - 1)})


def measure(mode: str, mib: int, gigabytes: float, hwm: int = 4) -> dict:
    size = mib << 20
    count = max(8, int(gigabytes * 1e9 / size))
    with tempfile.TemporaryDirectory() as directory:
        endpoint = f"ipc://{directory}/receive.sock"
        spawn = mp.get_context("spawn")
        results = spawn.Queue()
        consumer = spawn.Process(target=_consume, args=(mode, endpoint, size, count, hwm, results))
        consumer.start()
        consumer.join(600)
        if consumer.exitcode != 0:
            raise RuntimeError(f"the {mode} consumer for {mib} MiB exited with {consumer.exitcode}")
        return results.get(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,32,128", help="message sizes in MiB, comma-separated")
    parser.add_argument("--gigabytes", type=float, default=2.0, help="bytes received per case, in GB")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = [measure(mode, mib, args.gigabytes) for mib in sizes for mode in MODES]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"Python consumer over ipc, {args.gigabytes:g} GB per case, {os.cpu_count()} CPUs")
    print(f"{'mode':>10} {'MiB':>5} {'GB/s':>6} {'CPU s/GB':>9} {'faults/msg':>11}")
    for row in rows:
        print(f"{row['mode']:>10} {row['mib']:>5} {row['gb_per_s']:6.2f} {row['cpu_s_per_gb']:9.3f} "
              f"{row['page_faults_per_message']:11.0f}")
    by = {(row["mode"], row["mib"]): row for row in rows}
    smallest = min(sizes)
    for mib in sizes:
        if mib == smallest:
            continue
        rates = ", ".join(f"{mode} {by[(mode, mib)]['gb_per_s'] / by[(mode, smallest)]['gb_per_s']:.2f}x" for mode in MODES)
        cpu = by[("plain", mib)]["cpu_s_per_gb"] / by[("reuse", mib)]["cpu_s_per_gb"]
        print(f"{mib} MiB rate / {smallest} MiB rate: {rates}; CPU per GB plain / reuse: {cpu:.2f}x")


if __name__ == "__main__":
    main()
