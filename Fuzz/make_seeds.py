"""Writes the seed corpora under Fuzz/corpus: small valid inputs for each target (run from the repo root)."""
import shutil
from pathlib import Path

import numpy as np

from noised_client.codec import encode
from noised_client.feedback import encode_report

root = Path("Fuzz/corpus")


def write(target: str, name: str, data: bytes) -> None:
    (root / target / name).write_bytes(data)


messages = {
    "f32": encode({"latents": np.ones((2, 3, 4), np.float32)}),
    "f16-ids": encode({"latents": np.zeros((3, 8), np.float16), "noise_id": np.array([1, 2, 3], np.uint64)},
                      {"origin": "seed"}),
    "video-caption": encode({"latents": np.full((1, 2, 2, 2, 2), 0.5, np.float32),
                             "caption": np.array([7, 8, 9], np.uint8), "mask": np.array([True, False])}),
    "one-d": encode({"latents": np.arange(4, dtype=np.float32)}),
}
for name, data in messages.items():
    write("protocol", name, data)
    write("safetensors", name, data)
write("safetensors", "many-dtypes", encode({
    "a": np.zeros((2,), np.float64), "b": np.zeros((2, 2), np.int64), "c": np.zeros((), np.int8),
    "d": np.zeros((0, 3), np.uint16)}, {"k": "v"}))
write("feedback", "step-only", encode_report(12))
write("feedback", "losses", encode_report(100, sigma=np.array([0.1, 0.5, 0.9], np.float32),
                                          loss=np.array([1.0, 0.5, 0.25], np.float32)))
for path in sorted(Path("config/examples").rglob("*.yaml")) + [Path("config/noised.yaml")]:
    shutil.copy(path, root / "config" / path.name)
