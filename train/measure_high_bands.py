#!/usr/bin/python3
"""Report the gains the network gives to the high bands of clean full-band speech.

Usage: /usr/bin/python3 train/measure_high_bands.py CHECKPOINT FILE...

Most training speech stops below 12 kHz, and the loss ignores the bins above each clip's
bandwidth, so the network never learned what full-band speech looks like up there. This prints,
per band from 4 kHz up, the mean gain in dB over the speech frames (voice probability above
0.5) of clean files. It shows whether the model strips the top octave of full-band speech.
"""

import argparse
import os
import sys

import numpy as np
import scipy.signal
import soundfile
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_checkpoint  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("files", nargs="+", help="clean speech at 44.1 kHz or more")
    args = ap.parse_args()
    model, _ = load_checkpoint(args.checkpoint)
    cfg = model.cfg
    gains_db = []
    for path in args.files:
        x, rate = soundfile.read(path, dtype="float64", always_2d=True)
        x = x.mean(axis=1)
        if rate != cfg.rate_hz:
            g = np.gcd(rate, cfg.rate_hz)
            x = scipy.signal.resample_poly(x, cfg.rate_hz // g, rate // g)
        x = x / (np.sqrt(np.mean(x ** 2)) + 1e-9) * 10 ** (-26 / 20)
        with torch.no_grad():
            t = torch.from_numpy(x.astype(np.float32)).reshape(1, -1)
            gains, voice = model.network(model.features(model.stft(t), t))
        voiced = voice[0] > 0.5
        gains_db.append(20 * np.log10(gains[0][voiced].numpy() + 1e-6))
    table = np.concatenate(gains_db)
    print(f"{len(table)} speech frames from {len(args.files)} files")
    print("band centre (Hz)  mean gain (dB)  10th percentile (dB)")
    for b, centre in enumerate(cfg.band_centres_hz):
        if centre >= 4000:
            print(f"{centre:16.0f}  {table[:, b].mean():14.1f}  {np.percentile(table[:, b], 10):20.1f}")


if __name__ == "__main__":
    main()
