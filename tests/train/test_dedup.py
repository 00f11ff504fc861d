#!/usr/bin/python3
"""Checks train/drsn/dedup.py, which keeps copies of held-out noise out of the training split.

A copy must be found after what game packages do to shared sounds: a crop off the analysis
grid, a new level, an equaliser, a pass through 11.025 kHz and added hiss, and a 2 s crop too.
Two different recordings of the same kind of noise must not match, and silence and clips too
short to check must neither match nor break the check.
"""

import os
import sys

import numpy as np
import scipy.signal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "train"))
from drsn import dedup  # noqa: E402

RATE_HZ = 48000


def rain_like(seconds, rng):
    """Return a rain-like bed: low-passed noise with random drops and a slowly wandering level,
    whose fine pattern over time is its own."""
    n = int(seconds * RATE_HZ)
    bed = scipy.signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal(n))
    drops = np.zeros(n)
    drops[rng.integers(0, n, int(seconds * 40))] = rng.uniform(2, 20, int(seconds * 40))
    drops = scipy.signal.lfilter([1.0], [1.0, -0.995], drops) * rng.standard_normal(n)
    level = 1 + 0.5 * np.sin(2 * np.pi * np.cumsum(rng.uniform(0.05, 0.3, n)) / RATE_HZ)
    return ((bed * 0.05 + drops * 0.02) * level).astype(np.float32)


def main():
    rng = np.random.default_rng(7)
    held_out = rain_like(30, rng)
    other = rain_like(30, rng)

    # Cut off the 50 ms frame grid: 5 s plus half a hop.
    copy = held_out[5 * RATE_HZ + 1200: 20 * RATE_HZ] * 0.2
    copy = scipy.signal.lfilter([1.0, -0.8], [1.0], copy)
    copy = scipy.signal.resample_poly(scipy.signal.resample_poly(copy, 11025, 48000), 48000, 11025)
    copy = (copy + 0.05 * np.std(copy) * rng.standard_normal(len(copy))).astype(np.float32)
    short_copy = held_out[12 * RATE_HZ + 700: 14 * RATE_HZ] * 3.0
    short_other = other[: 2 * RATE_HZ]
    silence = np.zeros(10 * RATE_HZ, dtype=np.float32)
    too_short = held_out[: RATE_HZ // 2]

    copies = dedup.find_copies([other, copy, short_copy, short_other, silence, too_short], [held_out])
    print(f"matches: {copies}")
    assert sorted(copies) == [1, 2], f"expected the two copies (1 and 2) to match, got {copies}"
    assert copies[1][1] > 0.95, f"the copy correlates only {copies[1][1]:.3f}"
    assert copies[2][1] > 0.95, f"the 2 s copy correlates only {copies[2][1]:.3f}"

    features = dedup.band_energies(held_out)
    score = dedup.best_match(dedup.band_energies(other), dedup.templates(features))
    assert score.max() < 0.5, f"a different recording correlates {score.max():.3f}"
    print(f"copy {copies[1][1]:.3f}, 2 s copy {copies[2][1]:.3f}, different recording {score.max():.3f}")


if __name__ == "__main__":
    main()
