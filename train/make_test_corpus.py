#!/usr/bin/python3
"""Write a tiny generated corpus in the layout prepare_data.py produces.

Usage: /usr/bin/python3 train/make_test_corpus.py OUT_DIR [--seconds S]

The "speech" is harmonic tones with syllable-like envelopes and the noise is coloured noise;
it exists so that the training smoke test can run in seconds without any download.
"""

import argparse
import json
import os

import numpy as np

RATE_HZ = 48000


def syllables(rng, seconds):
    n = int(seconds * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    f0 = rng.uniform(100, 250) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / RATE_HZ
    x = sum(np.sin(k * phase) / k for k in range(1, 40))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 5) * t), 0, None) ** 2
    return (x * envelope * 0.05).astype(np.float32)


def write(out_dir, name, clips, extra):
    data = np.concatenate(clips)
    np.save(os.path.join(out_dir, f"{name}.npy"), (np.clip(data, -1, 1) * 32767).astype(np.int16))
    index, offset = [], 0
    for c in clips:
        index.append(dict(extra, path=f"generated/{name}/{len(index)}", offset=offset, length=len(c)))
        offset += len(c)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(index, f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=1.5, help="length of each generated clip")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(7)
    for split in ("train", "val", "eval"):
        speech = [syllables(rng, args.seconds) for _ in range(3)]
        noise = [(rng.standard_normal(int(args.seconds * RATE_HZ)) * 0.03).astype(np.float32) for _ in range(2)]
        write(args.out, f"{split}_speech", speech, {"bandwidth_hz": 24000, "speaker": f"tone:{split}"})
        write(args.out, f"{split}_noise", noise, {"bandwidth_hz": 24000})


if __name__ == "__main__":
    main()
