#!/usr/bin/python3
"""Score ideal gains on the held-out evaluation set: how far gains of a given resolution can go.

Usage: /usr/bin/python3 train/ideal_gains.py [--data DIR] [--limit-db DB] [--fine-hz HZ]

The gains come from the clean speech and the noise of each pair (an oracle no causal model
has): sqrt(S / (S + N)) of their energies, clamped to the reduction limit, on the default
model's STFT. Three resolutions: the 32 bands of the models, interpolated to bins as the engine
does; every bin below --fine-hz with the bands above; every bin. A fourth row has the band
gains that bring each band closest to the clean spectrum in the least-squares sense,
Re(sum w X conj(S)) / sum w |X|^2 over the band's weights w, clamped the same way. Prints the
mean SI-SDR and ESTOI improvement of each over the noisy input.
"""

import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import metrics  # noqa: E402
from drsn.model import DRSN, Config  # noqa: E402
from eval_checkpoint import evaluation_pairs, resynthesise  # noqa: E402


def least_squares_band_gains(weights, noisy_spec, clean_spec, floor):
    """Return the band gains [bands, frames] that bring each band of noisy_spec [bins, frames]
    closest to clean_spec, Re(sum w X conj(S)) / sum w |X|^2 over the band's weights, limited
    to floor .. 1."""
    cross = weights @ (noisy_spec * clean_spec.conj()).real
    return (cross / (weights @ noisy_spec.abs() ** 2 + 1e-20)).clamp(floor, 1.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise")))
    ap.add_argument("--limit-db", type=float, default=30.0)
    ap.add_argument("--fine-hz", type=float, default=5000.0)
    args = ap.parse_args()

    torch.set_num_threads(1)
    model = DRSN(Config())
    weights = model.weights.double()
    floor = 10 ** (-args.limit_db / 20)
    fine_bins = int(np.ceil(args.fine_hz * model.cfg.window_samples / model.cfg.rate_hz))

    names = ["bands", f"bins below {args.fine_hz:.0f} Hz, bands above", "bins", "bands, least squares"]
    scores = {name: [] for name in names}
    pairs = 0
    for _row, clean, noisy, rate in evaluation_pairs(args.data, dtype="float32"):
        pairs += 1
        clean_spec = model.stft(torch.from_numpy(clean).reshape(1, -1))[0].to(torch.complex128)
        noisy_spec = model.stft(torch.from_numpy(noisy).reshape(1, -1))[0].to(torch.complex128)
        speech, noise = clean_spec.abs() ** 2, (noisy_spec - clean_spec).abs() ** 2
        band_speech, band_noise = weights @ speech, weights @ noise
        band = weights.T @ torch.sqrt(band_speech / (band_speech + band_noise + 1e-20)).clamp(floor, 1.0)
        per_bin = torch.sqrt(speech / (speech + noise + 1e-20)).clamp(floor, 1.0)
        mixed = torch.cat([per_bin[:fine_bins], band[fine_bins:]])
        least_squares = weights.T @ least_squares_band_gains(weights, noisy_spec, clean_spec, floor)
        for name, gain in zip(names, (band, mixed, per_bin, least_squares)):
            out = resynthesise(model, (noisy_spec * gain).to(torch.complex64)[None], len(noisy))
            scores[name].append((metrics.si_sdr(clean, out) - metrics.si_sdr(clean, noisy),
                                 metrics.estoi(clean, out, rate) - metrics.estoi(clean, noisy, rate)))

    print(f"{pairs} pairs, gains limited to -{args.limit_db:g} dB")
    print("ideal gains per                      SI-SDR improvement  ESTOI improvement")
    for name in names:
        si_sdr, estoi = np.mean(scores[name], axis=0)
        print(f"{name:36s} {si_sdr:+17.2f} dB  {estoi:+17.3f}")


if __name__ == "__main__":
    main()
