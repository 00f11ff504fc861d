#!/usr/bin/python3
"""The PyTorch twin and the C renderer give the same output audio for both shipped models.

Usage: test_twin_output.py RENDERER

The golden-vector test compares features, activations and gains. This one compares what comes
out: the spectrum after the pitch filter and the gains, resynthesised, as the renderer writes it
and as train/eval_checkpoint.py computes it from the model's checkpoint. The signal is a gliding
voice with noise, a click and silence, and its length is no multiple of the hop, so that the
last samples are checked too.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "train"))
sys.path.insert(0, os.path.join(ROOT, "tools"))

from eval_checkpoint import denoise  # noqa: E402
from export import golden_signal, load_checkpoint  # noqa: E402

RATE_HZ = 48000
MODELS = {
    "default": "models/checkpoints/default-p1.pt",
    "low-latency": "models/checkpoints/low-latency-pfll1.pt",
}
# The two agree to about -120 dB; the bound leaves room for other FFT builds.
MAX_ERROR_DB = -80.0


def main():
    renderer = sys.argv[1]
    x = golden_signal(RATE_HZ, 300, 480)[:143_923].astype(np.float64)
    x[60_000:70_000] = 0.0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="drsn-twin-") as tmp:
        in_path = os.path.join(tmp, "in.wav")
        soundfile.write(in_path, x, RATE_HZ, subtype="FLOAT")
        for name, checkpoint in MODELS.items():
            out_path = os.path.join(tmp, f"out-{name}.wav")
            subprocess.run([renderer, "-q", "-f", "--model", name, in_path, out_path], check=True)
            rendered, rate = soundfile.read(out_path)
            model, _ = load_checkpoint(os.path.join(ROOT, checkpoint))
            twin = denoise(model, x, 30.0)
            if rate != RATE_HZ or len(rendered) != len(x) or len(twin) != len(x):
                print(f"{name}: lengths {len(rendered)} (renderer) and {len(twin)} (twin), "
                      f"expected {len(x)}")
                failures += 1
                continue
            error_db = 10 * np.log10(np.sum((rendered - twin) ** 2) / np.sum(twin ** 2))
            print(f"{name}: renderer and twin differ by {error_db:.1f} dB (bound {MAX_ERROR_DB} dB)")
            failures += error_db > MAX_ERROR_DB
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
