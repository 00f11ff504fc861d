#!/usr/bin/python3
"""Build the fixed evaluation set from held-out speakers and noise recordings.

Usage: /usr/bin/python3 train/prepare_eval.py [--data DIR] [--pairs-per-snr N]

Writes DATA/eval/eval.csv and the WAV files it lists (48 kHz mono float): for each input SNR
of -5, 0, 5, 10 and 15 dB, N pairs of clean speech (4 s crops from evaluation speakers) and
the same speech with an evaluation noise recording added at that SNR. Every choice comes from
a fixed seed, so the set is the same on every machine that has the same corpus.
"""

import argparse
import csv
import os
import sys

import numpy as np
import soundfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drsn.mixer import RATE_HZ, Bank, active_rms  # noqa: E402

SNRS_DB = (-5, 0, 5, 10, 15)
SECONDS = 4.0


def speech_crop(bank, rng, speaker):
    """Concatenate clips of one speaker, with short pauses, into a 4 s crop."""
    n = int(SECONDS * RATE_HZ)
    ids = [i for i, c in enumerate(bank.index) if c["speaker"] == speaker]
    out = np.zeros(n, dtype=np.float32)
    pos = int(0.2 * RATE_HZ)
    while pos < n - RATE_HZ // 4:
        x = bank.clip(int(rng.choice(ids)))
        take = min(len(x), n - pos)
        out[pos: pos + take] = x[:take]
        pos += take + int(rng.uniform(0.1, 0.3) * RATE_HZ)
    return out


def noise_crop(bank, rng, index):
    n = int(SECONDS * RATE_HZ)
    x = bank.clip(index)
    if len(x) < n:
        x = np.tile(x, n // len(x) + 1)
    start = int(rng.integers(0, len(x) - n + 1))
    return x[start: start + n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise")))
    ap.add_argument("--pairs-per-snr", type=int, default=12)
    args = ap.parse_args()

    corpus = os.path.join(args.data, "corpus")
    out_dir = os.path.join(args.data, "eval")
    os.makedirs(out_dir, exist_ok=True)
    speech = Bank(corpus, "eval_speech")
    noise = Bank(corpus, "eval_noise")
    speakers = sorted({c["speaker"] for c in speech.index})
    rng = np.random.default_rng(2026)

    rows = []
    for snr in SNRS_DB:
        for k in range(args.pairs_per_snr):
            speaker = speakers[k % len(speakers)]
            clean = speech_crop(speech, rng, speaker)
            noise_index = int(rng.integers(len(noise)))
            n = noise_crop(noise, rng, noise_index)
            n = n * (active_rms(clean) / (np.sqrt(np.mean(n ** 2)) + 1e-9) * 10 ** (-snr / 20))
            noisy = clean + n
            gain = 10 ** (rng.uniform(-32, -20) / 20) / active_rms(noisy)
            gain = min(gain, 0.95 / np.max(np.abs(noisy)))
            pair = f"{len(rows):03d}"
            soundfile.write(os.path.join(out_dir, f"{pair}_clean.wav"), clean * gain, RATE_HZ, subtype="FLOAT")
            soundfile.write(os.path.join(out_dir, f"{pair}_noisy.wav"), noisy * gain, RATE_HZ, subtype="FLOAT")
            rows.append({"id": pair, "snr_db": snr, "clean": f"{pair}_clean.wav", "noisy": f"{pair}_noisy.wav",
                         "speaker": speaker, "noise": noise.index[noise_index]["path"]})

    with open(os.path.join(out_dir, "eval.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {len(rows)} pairs from {len(speakers)} speakers and {len(noise)} noise recordings to {out_dir}")


if __name__ == "__main__":
    main()
