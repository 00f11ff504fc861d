"""lv2apply (lilv) on a noisy speech file against the offline renderer.

lv2apply passes no host features and runs the plugin one sample at a time;
its output is delayed by the plugin latency, while the renderer's is
aligned with the input. After removing that shift both must be identical,
for the mono plugin at its default settings and with another limit, for
the stereo plugin with linked and independent channels, and for both with
the Model port set to the low-latency model, against the renderer's
--model low-latency, where the shift is 480 samples.

Usage: test_lv2apply.py DRSN_DENOISE   (LV2_PATH must reach the bundle)
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_testlib import RATE, make_noisy_speech, require  # noqa: E402

# One analysis window at 48 kHz per value of the Model port: 20 ms for the
# default model, 10 ms for the low-latency model.
LATENCY = {0: 960, 1: 480}


def lv2apply(uri, source, destination, controls):
    command = [require("lv2apply"), "-i", source, "-o", destination]
    for symbol, value in controls.items():
        command += ["-c", symbol, str(value)]
    subprocess.run(command + [uri], check=True)
    audio, rate = sf.read(destination, dtype="float32", always_2d=True)
    assert rate == RATE
    return audio


def render(renderer, source, destination, options):
    subprocess.run([renderer, "-q", "-f", *options, source, destination],
                   check=True)
    audio, _ = sf.read(destination, dtype="float32", always_2d=True)
    return audio


def compare(name, plugin_out, rendered, latency):
    shifted = plugin_out[latency:]
    reference = rendered[:len(shifted)]
    assert shifted.shape == reference.shape, (shifted.shape, reference.shape)
    difference = float(np.max(np.abs(shifted - reference)))
    changed = float(np.max(np.abs(reference - plugin_out[:len(reference)])))
    print(f"{name}: latency {latency}, max difference {difference:.2e} over "
          f"{len(shifted)} frames")
    assert difference <= 1e-6, name
    assert changed > 1e-3, f"{name}: the output equals the input"


def main():
    renderer = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        _, noisy = make_noisy_speech(work)
        mono = os.path.join(work, "noisy.wav")
        stereo = os.path.join(work, "stereo.wav")
        # The right channel gets the same speech under different noise.
        right = np.roll(noisy, 4801) * 0.7
        sf.write(stereo, np.stack([noisy, right], axis=1), RATE,
                 subtype="FLOAT")

        cases = [
            ("mono default", "urn:drsn-denoise:mono", mono, {}, []),
            ("mono limit 12", "urn:drsn-denoise:mono", mono, {"limit": 12},
             ["--limit", "12"]),
            ("stereo linked", "urn:drsn-denoise:stereo", stereo,
             {"link": 1}, ["--link"]),
            ("stereo independent", "urn:drsn-denoise:stereo", stereo,
             {"link": 0}, ["--no-link"]),
            ("mono low latency", "urn:drsn-denoise:mono", mono,
             {"model": 1}, ["--model", "low-latency"]),
            ("stereo low latency independent", "urn:drsn-denoise:stereo",
             stereo, {"model": 1, "link": 0},
             ["--model", "low-latency", "--no-link"]),
        ]
        for index, (name, uri, source, controls, options) in enumerate(cases):
            plugin_out = lv2apply(uri, source,
                                  os.path.join(work, f"lv2-{index}.wav"),
                                  controls)
            rendered = render(renderer, source,
                              os.path.join(work, f"render-{index}.wav"),
                              options)
            compare(name, plugin_out, rendered,
                    LATENCY[controls.get("model", 0)])
    print("lv2apply matches the renderer")


if __name__ == "__main__":
    main()
