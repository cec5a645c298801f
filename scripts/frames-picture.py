"""Draws docs/images/frames.svg: σ per frame for a few samples under each schedule.frames mode,
from the numpy reference (the daemon draws the same values for the same seed and noise ids)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients" / "python"))

import numpy as np  # noqa: E402

from noised_client import reference  # noqa: E402

SEED, SAMPLES, FRAMES, CELL, GAP = 2024, 12, 16, 14, 40
PANELS = [
    ("independent", dict(mode="independent")),
    ("independent, chunk 4", dict(mode="independent", chunk=4)),
    ("sorted", dict(mode="sorted")),
    ("sorted + i2v (first: 1)", dict(mode="sorted", conditions=[(1, 0, 0), (1, 1, 0)])),
]


def main(out: Path) -> None:
    ids = np.arange(SAMPLES, dtype=np.uint64)
    width = len(PANELS) * (FRAMES * CELL + GAP) + GAP
    height = SAMPLES * CELL + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">', f'<rect width="{width}" height="{height}" fill="white"/>']
    for panel, (title, options) in enumerate(PANELS):
        sigma, _ = reference.frame_sigmas(SEED, ids, FRAMES, reference.uniform_sigma, **options)
        left = GAP + panel * (FRAMES * CELL + GAP)
        parts.append(f'<text x="{left}" y="20">{title}</text>')
        for b in range(SAMPLES):
            for f in range(FRAMES):
                shade = int(round(255 * (1 - float(sigma[b, f]))))
                parts.append(f'<rect x="{left + f * CELL}" y="{30 + b * CELL}" width="{CELL}" height="{CELL}" '
                             f'fill="rgb({shade},{shade},{shade})" stroke="#ddd" stroke-width="0.5"/>')
        parts.append(f'<text x="{left}" y="{45 + SAMPLES * CELL}">frame 0 → {FRAMES - 1}; one row per sample</text>')
    parts.append("</svg>")
    out.write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "docs" / "images" / "frames.svg")
