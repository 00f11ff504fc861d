"""jalv (console) runs both plugins under a private jackd on the dummy backend.

Each plugin runs for a few seconds; then its latency output must read 960
(20 ms at 48 kHz), JACK must report that latency for the plugin's output
ports, and applying a preset must set the controls it names.

With the Model port set to 1 on the command line, the latency output and
JACK's latency must be 480 (10 ms) from the start. Setting the port to 0
while running brings back 960, and the mono "Low latency" preset sets the
port to 1 again.

Usage: test_jalv.py   (LV2_PATH must reach the bundle)
"""

import contextlib
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_testlib import LineReader, jack_server, require  # noqa: E402

LATENCY = 960
LOW_LATENCY = 480

PLUGINS = [
    ("urn:drsn-denoise:mono", ["out"], "urn:drsn-denoise:preset:mono-strong",
     {"limit": 50.0, "mix": 100.0}),
    ("urn:drsn-denoise:stereo", ["out_l", "out_r"],
     "urn:drsn-denoise:preset:stereo-podcast",
     {"limit": 24.0, "mix": 90.0, "link": 1.0}),
]


def latency_ranges(port):
    """Return JACK's capture and playback latency ranges of port."""
    listing = subprocess.run([require("jack_lsp"), "-l", port],
                             capture_output=True, text=True, check=True)
    ranges = re.findall(r"(capture|playback) latency = \[ *(\d+) +(\d+) *\]",
                        listing.stdout)
    assert len(ranges) == 2, f"no latency ranges for {port}: {listing.stdout}"
    return {mode: (int(low), int(high)) for mode, low, high in ranges}


def command(jalv, text):
    jalv.stdin.write(text + "\n")
    jalv.stdin.flush()


def check_latency(jalv, reader, name, uri, outputs, expected):
    """Check the latency output and JACK's latency of the output ports."""
    command(jalv, "monitors")
    line = reader.wait_for("latency =", timeout=10)
    latency = float(line.split("=")[1])
    print(f"{uri}: latency port {latency}")
    assert latency == expected, (latency, expected)

    # jalv 1.6.6 adds the plugin latency to the capture range of its
    # input ports and the playback range of its output ports (the
    # opposite of drsn-jack), so only the value is checked here.
    for output in outputs:
        ranges = latency_ranges(f"{name}:{output}")
        assert ranges["playback"] == (expected, expected), ranges


def apply_preset(jalv, reader, preset, preset_values):
    """Apply preset and check the controls it sets."""
    # jalv loads the preset files on "presets" and applies a preset
    # through the audio thread, so the new values show a cycle later.
    command(jalv, "presets")
    reader.wait_for(preset, timeout=10)
    command(jalv, f"preset {preset}")
    time.sleep(0.5)
    command(jalv, "controls")
    for symbol, value in preset_values.items():
        line = reader.wait_for(f"{symbol} =", timeout=10)
        assert float(line.split("=")[1]) == value, line


@contextlib.contextmanager
def running_jalv(uri, options=()):
    """Run jalv (console) on uri; yield the process, its output reader and
    its JACK client name. Fails if jalv logs an error."""
    name = f"jalv-{os.getpid()}"
    # jalv writes through stdio, which buffers whole blocks into a pipe.
    jalv = subprocess.Popen([require("stdbuf"), "-oL", "-eL", require("jalv"),
                             "-x", "-n", name, *options, uri],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    reader = LineReader(jalv.stdout)
    try:
        reader.wait_for("Block length", timeout=20)
        time.sleep(3.0)  # run for a while before reading the outputs
        assert jalv.poll() is None, "jalv exited early"
        yield jalv, reader, name
    finally:
        jalv.stdin.close()
        try:
            jalv.wait(timeout=10)
        except subprocess.TimeoutExpired:
            jalv.terminate()
            jalv.wait(timeout=10)
    errors = [line for line in reader.seen if "error" in line.lower()]
    assert not errors, errors


def check_plugin(uri, outputs, preset, preset_values):
    with running_jalv(uri) as (jalv, reader, name):
        check_latency(jalv, reader, name, uri, outputs, LATENCY)
        apply_preset(jalv, reader, preset, preset_values)


def check_model_port(uri, outputs, low_latency_preset):
    with running_jalv(uri, ["-c", "model=1"]) as (jalv, reader, name):
        check_latency(jalv, reader, name, uri, outputs, LOW_LATENCY)
        if not low_latency_preset:
            return

        # The new model warms up and crossfades in within 40 ms, and jalv
        # 1.6.6 then passes the new latency output on to JACK.
        command(jalv, "model = 0")
        time.sleep(0.5)
        check_latency(jalv, reader, name, uri, outputs, LATENCY)
        apply_preset(jalv, reader, low_latency_preset, {"model": 1.0})
        time.sleep(0.5)
        check_latency(jalv, reader, name, uri, outputs, LOW_LATENCY)


def main():
    with jack_server("drsn-jalv-test"):
        for uri, outputs, preset, values in PLUGINS:
            check_plugin(uri, outputs, preset, values)
        check_model_port("urn:drsn-denoise:mono", ["out"],
                         "urn:drsn-denoise:preset:mono-low-latency")
        check_model_port("urn:drsn-denoise:stereo", ["out_l", "out_r"], None)
    print("jalv test passed")


if __name__ == "__main__":
    main()
