#!/usr/bin/python3
"""Score a checkpoint on the held-out evaluation set with the PyTorch model (offline, no C).

Usage: /usr/bin/python3 train/eval_checkpoint.py CHECKPOINT [--data DIR] [--limit-db DB]

Prints the mean SI-SDR and ESTOI of the noisy input and of the output per input SNR. The
benchmark in bench/ is the reference measurement; this is for ablations and for checking a
checkpoint already chosen on the validation split (train/select_checkpoint.py), where running
the C renderer would only add time.
"""

import argparse
import csv
import os
import sys

import numpy as np
import soundfile
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools"))
import metrics  # noqa: E402
from drsn.model import dc_offsets  # noqa: E402
from export import load_checkpoint  # noqa: E402
from train import overlap_add  # noqa: E402


def evaluation_pairs(data_dir, dtype="float64"):
    """Yield each pair of the held-out evaluation set as its eval.csv row, the clean and the
    noisy samples, and the sample rate."""
    eval_dir = os.path.join(data_dir, "eval")
    for row in csv.DictReader(open(os.path.join(eval_dir, "eval.csv"))):
        clean, rate = soundfile.read(os.path.join(eval_dir, row["clean"]), dtype=dtype)
        noisy, _ = soundfile.read(os.path.join(eval_dir, row["noisy"]), dtype=dtype)
        yield row, clean, noisy, rate


def padded(model, x):
    """Return the samples x (numpy) as a waveform [1, samples] with a window of zeros after
    the end, as the renderer feeds, so that every sample gets all its frames."""
    x = np.concatenate([x, np.zeros(model.cfg.window_samples)])
    return torch.from_numpy(x.astype(np.float32)).reshape(1, -1)


def engine_waveform(model, x):
    """Return the samples x (numpy) padded() and less the engine's DC offset estimate
    (dc_offsets), and that estimate, both [1, samples]."""
    t = padded(model, x)
    offsets = dc_offsets(t, model.cfg.hop_samples)
    return t - offsets, offsets


@torch.no_grad()
def waveform_gains(model, t, limit_db):
    """Run the model on the waveform t [1, samples] from engine_waveform(). Returns its
    spectrum, pitch spectrum and pitch sums (None without the pitch input) and the gains
    [1, frames, bands], limited to -limit_db."""
    spec = model.stft(t)
    p = sums = None
    if model.cfg.pitch:
        p = model.pitch_spectrum(t, spec)
        sums = model.pitch_sums(spec, p)
    gains, _voice = model.network(model.features(spec, t, p, sums))
    return spec, p, sums, gains.clamp(min=10 ** (-limit_db / 20))


def network_gains(model, x, limit_db):
    """Run the model on the samples x (numpy) as the engine does (engine_waveform). Returns
    that waveform and the values of waveform_gains()."""
    t, _offsets = engine_waveform(model, x)
    return (t, *waveform_gains(model, t, limit_db))


def resynthesise(model, spec, length):
    """Return length samples of the spectrum spec [1, bins, frames], aligned with the input:
    the left padding of stft() is dropped. It uses train.py's overlap-add, because
    torch.istft rejects the square-root Hann window, whose squared overlap is zero at the
    very first sample."""
    start = model.cfg.window_samples - model.cfg.hop_samples
    return overlap_add(model, spec)[0, start:start + length].numpy()


@torch.no_grad()
def denoise(model, x, limit_db):
    """Return the samples x (numpy) denoised as the C engine does, aligned with x."""
    t, offsets = engine_waveform(model, x)
    spec, p, sums, gains = waveform_gains(model, t, limit_db)
    return resynthesise(model, model.enhance(spec, gains, p, sums), len(x)) + offsets[0, : len(x)].numpy()


def checkpoint_arguments(description):
    """Return the command-line parser of a script that scores one checkpoint on the evaluation
    set."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("checkpoint")
    ap.add_argument("--data", default=os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise")))
    ap.add_argument("--limit-db", type=float, default=30.0)
    return ap


def main():
    args = checkpoint_arguments(__doc__.split("\n")[0]).parse_args()
    torch.set_num_threads(1)
    model, ck = load_checkpoint(args.checkpoint)
    per_snr = {}
    for r, clean, noisy, rate in evaluation_pairs(args.data):
        out = denoise(model, noisy, args.limit_db)[: len(noisy)]
        scores = (metrics.si_sdr(clean, noisy), metrics.si_sdr(clean, out),
                  metrics.estoi(clean, noisy, rate), metrics.estoi(clean, out, rate))
        per_snr.setdefault(int(r["snr_db"]), []).append(scores)
    print(f"checkpoint {args.checkpoint} (step {ck['step']})")
    print("snr_db  si_sdr_in  si_sdr_out  delta   estoi_in  estoi_out  delta")
    allv = []
    for snr in sorted(per_snr):
        v = np.array(per_snr[snr])
        allv.append(v)
        m = v.mean(axis=0)
        print(f"{snr:6d}  {m[0]:9.2f}  {m[1]:10.2f}  {m[1]-m[0]:+5.2f}   {m[2]:8.3f}  {m[3]:9.3f}  {m[3]-m[2]:+.3f}")
    m = np.concatenate(allv).mean(axis=0)
    print(f"  mean  {m[0]:9.2f}  {m[1]:10.2f}  {m[1]-m[0]:+5.2f}   {m[2]:8.3f}  {m[3]:9.3f}  {m[3]-m[2]:+.3f}")


if __name__ == "__main__":
    main()
