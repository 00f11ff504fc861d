#!/usr/bin/python3
"""Make examples/noisy-speech.flac, the recording the README's first command cleans.

Usage: /usr/bin/python3 train/make_example.py [--data DIR]

Greek speech from Tux Paint's stamp descriptions (a held-out speaker, never trained on) over
road traffic from LinCity-NG, at 5 dB SNR, 48 kHz, 16-bit FLAC. Both packages are in Debian
main; examples/README.md gives the sources and licences.
"""

import argparse
import os

import numpy as np
import scipy.signal
import soundfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEECH = ["elephant_desc_el.ogg", "giraffe_desc_el.ogg", "hippopotamus_desc_el.ogg", "rabbit_little_desc_el.ogg"]
SPEECH_DIR = "tuxpaint-stamps-default/usr/share/tuxpaint/stamps/animals/mammals"
NOISE = "lincity-ng-data/usr/share/games/lincity-ng/sounds/TraficHigh1.wav"
RATE_HZ = 48000
SNR_DB = 5.0


def load(path):
    x, rate = soundfile.read(path, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    g = np.gcd(rate, RATE_HZ)
    return scipy.signal.resample_poly(x, RATE_HZ // g, rate // g)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise")))
    args = ap.parse_args()
    pkg = os.path.join(args.data, "pkg")

    pause = np.zeros(int(0.4 * RATE_HZ))
    speech = np.concatenate([np.concatenate([pause, load(os.path.join(pkg, SPEECH_DIR, f))]) for f in SPEECH] + [pause])
    noise = load(os.path.join(pkg, NOISE))
    noise = np.tile(noise, len(speech) // len(noise) + 1)[: len(speech)]
    active = speech[np.abs(speech) > 0.01 * np.max(np.abs(speech))]
    noise *= np.sqrt(np.mean(active ** 2) / np.mean(noise ** 2)) * 10 ** (-SNR_DB / 20)
    mix = speech + noise
    mix *= 0.5 / np.max(np.abs(mix))
    out = os.path.join(ROOT, "examples", "noisy-speech.flac")
    soundfile.write(out, mix, RATE_HZ, subtype="PCM_16")
    print(f"wrote {out}: {len(mix) / RATE_HZ:.1f} s")


if __name__ == "__main__":
    main()
