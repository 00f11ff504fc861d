#!/usr/bin/python3
"""Find where a checkpoint's gains fall short of least-squares band gains on the held-out set.

Usage: /usr/bin/python3 train/gain_gap.py CHECKPOINT [--data DIR] [--limit-db DB]

For every evaluation pair the least-squares band gains, Re(sum w X conj(S)) / sum w |X|^2
over each band's weights w (train/ideal_gains.py), replace the network's gains in one
part of the spectrogram at a time: one of four frequency ranges, or the frames with speech
(the clean frame's energy within 30 dB of the clip's loudest frame), or the other frames.
The rest keeps the network's gains. Both are limited to the reduction limit, and the pitch
filter is left out, so that the rows differ in their gains alone. Prints the mean SI-SDR and
ESTOI improvement of each over the noisy input: the more a row gains over the network's own,
the more of the shortfall lies in that part.
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import metrics  # noqa: E402
from eval_checkpoint import (checkpoint_arguments, evaluation_pairs, network_gains, padded,  # noqa: E402
                             resynthesise)
from export import load_checkpoint  # noqa: E402
from ideal_gains import least_squares_band_gains  # noqa: E402

# Frequency ranges by band centre, in Hz.
RANGES_HZ = ((0, 500), (500, 1500), (1500, 4000), (4000, 1e9))
# A frame has speech when its clean energy is within this many dB of the clip's loudest.
SPEECH_RANGE_DB = 30.0


@torch.no_grad()
def main():
    args = checkpoint_arguments(__doc__.split("\n")[0]).parse_args()
    torch.set_num_threads(1)
    model, _ck = load_checkpoint(args.checkpoint)
    cfg = model.cfg
    floor = 10 ** (-args.limit_db / 20)
    centres = np.array(cfg.band_centres_hz)
    ranges = {}
    for lo, hi in RANGES_HZ:
        name = f"{lo / 1000:g} to {hi / 1000:g} kHz" if hi < 1e9 else f"{lo / 1000:g} kHz and up"
        mask = ((centres >= lo) & (centres < hi)).astype(np.float32)
        ranges[name] = torch.from_numpy(mask)[None, None, :]

    scores = {}
    pairs = 0
    for _row, clean, noisy, rate in evaluation_pairs(args.data):
        pairs += 1
        _x, spec, _p, _sums, gains = network_gains(model, noisy, args.limit_db)   # [1, frames, bands]
        clean_spec = model.stft(padded(model, clean))
        oracle = least_squares_band_gains(model.weights, spec[0], clean_spec[0], floor).T[None]
        level = 10 * torch.log10((clean_spec.abs() ** 2).sum(dim=1)[0] + 1e-20)
        speech = (level > level.max() - SPEECH_RANGE_DB).float()[None, :, None]

        variants = {"network": gains, "least squares everywhere": oracle}
        for name, mask in ranges.items():
            variants[f"least squares at {name}"] = oracle * mask + gains * (1 - mask)
        variants["least squares in speech frames"] = oracle * speech + gains * (1 - speech)
        variants["least squares in the other frames"] = oracle * (1 - speech) + gains * speech
        si_sdr_in, estoi_in = metrics.si_sdr(clean, noisy), metrics.estoi(clean, noisy, rate)
        for name, g in variants.items():
            out = resynthesise(model, spec * model.bin_gains(g), len(noisy))
            scores.setdefault(name, []).append((metrics.si_sdr(clean, out) - si_sdr_in,
                                                metrics.estoi(clean, out, rate) - estoi_in))

    print(f"{args.checkpoint}: {pairs} pairs, gains limited to -{args.limit_db:g} dB, no pitch filter")
    print(f"{'gains':36s} SI-SDR improvement  ESTOI improvement")
    for name, v in scores.items():
        si_sdr, estoi = np.mean(v, axis=0)
        print(f"{name:36s} {si_sdr:+15.2f} dB  {estoi:+17.3f}")


if __name__ == "__main__":
    main()
