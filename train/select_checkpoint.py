#!/usr/bin/python3
"""Compare checkpoints by their loss on a larger validation set than training checks.

Usage: /usr/bin/python3 train/select_checkpoint.py CHECKPOINT... [--batches N]

train.py validates on a few fixed batches, which is enough to save best.pt but noisy for
choosing between checkpoints whose losses are close. This script scores each checkpoint on
N fixed batches of the validation split, whose speakers and noise recordings are in neither
the training nor the evaluation set. It prints the mean loss and the mean SI-SDR and ESTOI
improvements over the crops that contain speech at input SNRs up to 20 dB, lowest loss
first. It also prints how closely the output follows the input on clean-only crops. The
held-out evaluation set plays no part in the choice.
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
from drsn.mixer import RATE_HZ, Mixer  # noqa: E402
from export import load_checkpoint  # noqa: E402
from train import default_data_dir, overlap_add, validate  # noqa: E402


@torch.no_grad()
def improvements(model, batches):
    """Return the mean SI-SDR (dB) and ESTOI improvements over crops with speech and noise,
    and the mean and lowest SI-SDR (dB) of the output against the input on clean-only crops."""
    model.eval()
    si_sdr, estoi, clean_scores = [], [], []
    for noisy, clean, _cutoff in batches:
        _spec, out, _gains, _voice = model(torch.from_numpy(noisy))
        # overlap_add returns window - hop samples of left padding first, as stft() added them.
        pad = model.cfg.window_samples - model.cfg.hop_samples
        denoised = overlap_add(model, out).numpy()[:, pad:pad + noisy.shape[1]]
        for x, s, y in zip(noisy, clean, denoised):
            # Crops without speech have no score, and clean-only crops no noise to remove.
            # The rest are scored at input SNRs up to 20 dB, near the evaluation set's range.
            noise_energy = np.sum((x - s) ** 2)
            # The mixer multiplies the noise of clean-only crops by 0, so their noise is exactly 0.
            if np.max(np.abs(s)) > 0 and noise_energy == 0:
                clean_scores.append(metrics.si_sdr(x, y))
            if np.max(np.abs(s)) == 0 or noise_energy < 0.01 * np.sum(s ** 2):
                continue
            si_sdr.append(metrics.si_sdr(s, y) - metrics.si_sdr(s, x))
            estoi.append(metrics.estoi(s, y, RATE_HZ) - metrics.estoi(s, x, RATE_HZ))
    if not clean_scores:
        return float(np.mean(si_sdr)), float(np.mean(estoi)), float("nan"), float("nan")
    return float(np.mean(si_sdr)), float(np.mean(estoi)), float(np.mean(clean_scores)), float(np.min(clean_scores))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--corpus", default=None,
                    help="corpus whose validation split to use (default DATA/corpus)")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-noise", action="append", default=[], metavar="TEXT",
                    help="leave out validation noise recordings whose path contains TEXT, for "
                         "example ones a candidate trained on (repeatable)")
    ap.add_argument("--si-sdr-weight", type=float, default=0.01,
                    help="SI-SDR term weight of the loss, the same for every checkpoint so that "
                         "runs trained with other weights compare on one scale")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    mixer = Mixer(args.corpus or os.path.join(args.data, "corpus"), "val", seconds=args.seconds)
    if args.skip_noise:
        keep = [c for c in mixer.noise.index if not any(t in c["path"] for t in args.skip_noise)]
        if not keep:
            sys.exit("select_checkpoint.py: --skip-noise leaves no validation noise recordings")
        mixer.noise.set_index(keep)
        print(f"validation noise recordings: {', '.join(os.path.basename(c['path']) for c in keep)}")
    # Seeds start past the ones train.py validates on, so these batches are new to the choice.
    batches = [mixer.batch(np.random.default_rng(5000 + i), args.batch) for i in range(args.batches)]
    scores = []
    for path in args.checkpoints:
        model, checkpoint = load_checkpoint(path)
        loss = validate(model, batches, args.si_sdr_weight)
        scores.append((loss, *improvements(model, batches), checkpoint["step"], path))
    print("loss     SI-SDR   ESTOI   clean mean/worst (dB)  step  checkpoint")
    for loss, si_sdr, estoi, clean_mean, clean_worst, step, path in sorted(scores):
        print(f"{loss:.4f}  {si_sdr:+.2f}  {estoi:+.3f}  {clean_mean:6.1f} / {clean_worst:5.1f}"
              f"          {step:6d}  {path}")


if __name__ == "__main__":
    main()
