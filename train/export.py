#!/usr/bin/python3
"""Export a training checkpoint as a model file plus golden vectors for the C tests.

Usage: /usr/bin/python3 train/export.py CHECKPOINT [--model OUT.drsn] [--golden OUT.bin]

BatchNorm layers are folded into the preceding weights. The golden vectors hold a fixed test
signal and, per frame, the features, every layer's output, the gains and the voice probability.
"""

import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drsn import modelfile  # noqa: E402
from drsn.model import DRSN, FULL_NETWORK, Config, folded_tensors  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def golden_signal(rate_hz, frames, hop):
    """Return a deterministic mix of a gliding harmonic tone, noise bursts and a click, with a
    DC offset, a gap of digital silence that starts and ends within hops, and a run of zeros too
    short to count as silence."""
    rng = np.random.default_rng(1234)
    n = frames * hop
    t = np.arange(n) / rate_hz
    f0 = 140 + 60 * t / t[-1]
    phase = 2 * np.pi * np.cumsum(f0) / rate_hz
    voiced = sum(np.sin(k * phase) / k for k in range(1, 30)) * 0.1
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    noise = rng.standard_normal(n) * 0.02
    x = voiced * envelope + noise
    x[n // 3] += 0.8
    x += 0.01
    x[n // 2 + 123:n // 2 + 7 * hop + 45] = 0.0
    x[3 * n // 4 + 7:3 * n // 4 + 17] = 0.0
    return x.astype(np.float32)


def load_checkpoint(path):
    ck = torch.load(path, map_location="cpu")
    cfg = Config(**ck["config"])
    model = DRSN(cfg, **ck.get("variant", {}))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="checkpoint written by train.py, or 'random' for an untrained model")
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "default.drsn"))
    ap.add_argument("--golden", default=os.path.join(ROOT, "tests", "data", "golden.bin"))
    ap.add_argument("--golden-frames", type=int, default=64)
    ap.add_argument("--recurrent", type=int, default=0,
                    help="with 'random': width of the recurrent layer (0 for none)")
    args = ap.parse_args()

    if args.checkpoint == "random":
        torch.manual_seed(0)
        model = DRSN(Config(running_mean_ms=1000, recurrent_hidden=args.recurrent))
        if args.recurrent:
            torch.nn.init.uniform_(model.rnn_out.weight, -0.3, 0.3)
            torch.nn.init.uniform_(model.rnn_out.bias, -0.3, 0.3)
        model.feature_mean.fill_(-8.0)
        model.feature_scale.fill_(0.25)
        # Give the BatchNorm layers non-trivial statistics so that folding is exercised.
        for m in model.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.1, 0.1)
        model.eval()
    else:
        model, checkpoint = load_checkpoint(args.checkpoint)
        ablations = [k for k, v in checkpoint.get("variant", {}).items() if v != FULL_NETWORK.get(k)]
        if ablations:
            sys.exit(f"{args.checkpoint}: cannot export the ablation variant ({', '.join(ablations)}), "
                     "because the model file and the C engine implement only the full network")

    size = modelfile.write_model(args.model, model.cfg, folded_tensors(model))
    cfg = model.cfg
    signal = golden_signal(cfg.rate_hz, args.golden_frames, cfg.hop_samples)
    frames = modelfile.write_golden(args.golden, model, signal)
    macs = model.macs_per_frame() * cfg.rate_hz / cfg.hop_samples
    print(f"wrote {args.model} ({size} bytes, {macs / 1e6:.1f} M MAC/s) and {args.golden} ({frames} frames)")


if __name__ == "__main__":
    main()
