#!/usr/bin/python3
"""Checks the intelligibility loss term of train/train.py against tools/metrics.py's ESTOI.

The term computes ESTOI's steps on the model's own STFT, so its values differ from ESTOI's.
It must still score identical signals 1 and fall as noise is added, ranking noisy versions of
one clip in the same order as ESTOI does. It must also stay differentiable.
"""

import os
import sys

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "train"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import metrics  # noqa: E402
from drsn.model import DRSN, Config  # noqa: E402
from train import estoi_like  # noqa: E402

RATE_HZ = 48000


def speech_like(seconds, rng):
    """Return a voiced tone whose pitch glides and whose level comes and goes as syllables do."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    phase = 2 * np.pi * np.cumsum(120 + 40 * np.sin(2 * np.pi * 0.7 * t)) / RATE_HZ
    voiced = sum(np.sin(k * phase) / k for k in range(1, 40))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.1 * voiced * syllables).astype(np.float32)


def main():
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    model = DRSN(Config())
    clean = speech_like(3.0, rng)
    noise = rng.standard_normal(len(clean)).astype(np.float32)
    spec = model.stft(torch.from_numpy(clean)[None])

    same = estoi_like(model, spec, spec).item()
    print(f"identical signals: {same:.4f}")
    assert abs(same - 1.0) < 1e-3, same

    term, reference = [], []
    for snr_db in (20, 10, 5, 0, -5):
        gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2) / 10 ** (snr_db / 10))
        noisy = clean + gain * noise
        noisy_spec = model.stft(torch.from_numpy(noisy)[None])
        term.append(estoi_like(model, spec, noisy_spec).item())
        reference.append(metrics.estoi(clean, noisy, RATE_HZ))
        print(f"{snr_db:+3d} dB SNR: term {term[-1]:.4f}, ESTOI {reference[-1]:.4f}")
    assert all(a > b for a, b in zip(term, term[1:])), term
    assert all(a > b for a, b in zip(reference, reference[1:])), reference

    noisy = torch.from_numpy(clean + 0.05 * noise)[None]
    gains = torch.full((1, model.weights.shape[1], spec.shape[-1]), 0.5, requires_grad=True)
    value = estoi_like(model, spec, model.stft(noisy) * gains)
    value.sum().backward()
    assert gains.grad is not None and torch.isfinite(gains.grad).all()
    assert gains.grad.abs().sum() > 0
    print("gradient finite and non-zero")


if __name__ == "__main__":
    main()
