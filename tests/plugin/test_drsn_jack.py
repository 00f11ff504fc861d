"""drsn-jack under a private jackd on the dummy backend.

Plays an impulse and a noisy speech file through the client with the
jack-player test client. Checks:
- the delay of the impulse equals the latency that drsn-jack prints and
  that JACK reports for its ports;
- the denoised speech matches the offline renderer's output for the same
  input history, so the JACK path adds and drops nothing, and SI-SDR
  improves by more than 1 dB;
- a buffer size change keeps the client running;
- stdin commands and signals change the controls;
- SIGTERM stops the client with exit status 0.

Usage: test_drsn_jack.py DRSN_JACK JACK_PLAYER DRSN_DENOISE
"""

import os
import re
import signal
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_testlib import (RATE, LineReader, jack_server,  # noqa: E402
                            make_noisy_speech, require, si_sdr)


def play(player, source, destination, tail_seconds):
    """Play source through dut; return the aligned recording and the JACK
    frame at which playback started."""
    result = subprocess.run(
        [player, source, destination, str(tail_seconds), "dut:in", "--",
         "dut:out"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"jack-player failed: {result.stderr}"
    start = int(re.search(r"player_start=(\d+)", result.stdout).group(1))
    audio, rate = sf.read(destination, dtype="float32")
    assert rate == RATE
    return audio, start


def port_latency(port, mode):
    """Return JACK's (min, max) latency of port for 'capture' or 'playback'."""
    listing = subprocess.run([require("jack_lsp"), "-l", port],
                             capture_output=True, text=True, check=True)
    match = re.search(mode + r" latency = \[ *(\d+) +(\d+) *\]",
                      listing.stdout)
    assert match, f"no {mode} latency in: {listing.stdout}"
    return int(match.group(1)), int(match.group(2))


def send(client, reader, command, expected):
    client.stdin.write(command + "\n")
    client.stdin.flush()
    return reader.wait_for(expected)


def main():
    drsn_jack, player, renderer = sys.argv[1:4]
    with tempfile.TemporaryDirectory() as work, \
            jack_server("drsn-jack-test"):
        clean, noisy = make_noisy_speech(work)
        impulse = np.zeros(RATE, dtype=np.float32)
        impulse_at = RATE // 4
        impulse[impulse_at] = 0.5
        sf.write(os.path.join(work, "impulse.wav"), impulse, RATE,
                 subtype="FLOAT")

        client = subprocess.Popen(
            [drsn_jack, "--no-connect", "--name", "dut", "--limit", "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        reader = LineReader(client.stdout)
        try:
            banner = reader.wait_for("running as", timeout=20)
            latency = int(re.search(r"latency (\d+) samples", banner).group(1))
            assert latency == 960, banner

            # JACK adds our latency to the ports' ranges.
            assert port_latency("dut:out", "capture") == (latency, latency)
            assert port_latency("dut:in", "playback") == (latency, latency)

            # With a 0 dB limit the output is the input delayed exactly.
            recorded, impulse_start = play(
                player, os.path.join(work, "impulse.wav"),
                os.path.join(work, "impulse-out.wav"), 0.5)
            peak = int(np.argmax(np.abs(recorded)))
            print(f"impulse delay {peak - impulse_at} samples, "
                  f"reported latency {latency}")
            assert peak - impulse_at == latency
            assert abs(recorded[peak] - 0.5) < 1e-5

            send(client, reader, "limit 30", "limit 30.0")
            recorded, speech_start = play(
                player, os.path.join(work, "noisy.wav"),
                os.path.join(work, "noisy-out.wav"), 0.5)
            aligned = recorded[latency:latency + len(clean)]
            assert len(aligned) == len(clean)

            # The engine keeps a running mean of past band energies, so the
            # renderer gets the whole input drsn-jack has seen: silence from
            # its first cycle, the impulse, silence, then the speech.
            status = send(client, reader, "status", "status ")
            first = int(re.search(r"first_frame=(\d+)", status).group(1))
            history = np.zeros(speech_start - first + len(noisy), np.float32)
            history[impulse_start - first:][:len(impulse)] = impulse
            history[speech_start - first:] = noisy
            history_path = os.path.join(work, "history.wav")
            sf.write(history_path, history, RATE, subtype="FLOAT")
            rendered_path = os.path.join(work, "rendered.wav")
            subprocess.run([renderer, "-q", "-f", "--limit", "30",
                            history_path, rendered_path], check=True)
            rendered, _ = sf.read(rendered_path, dtype="float32")
            rendered = rendered[speech_start - first:]
            difference = np.max(np.abs(aligned - rendered))
            print(f"max difference to the renderer {difference:.2e}")
            assert difference < 1e-5

            before = si_sdr(clean, noisy)
            after = si_sdr(clean, aligned)
            offline = si_sdr(clean, rendered)  # with the same history
            print(f"SI-SDR noisy {before:.2f} dB, drsn-jack {after:.2f} dB, "
                  f"renderer {offline:.2f} dB")
            # The JACK path must gain exactly what the model gains offline.
            assert abs(after - offline) < 0.01
            # The trained model gains about 3 dB on this speech in white
            # noise and hum at 5 dB SNR; 1 dB leaves room for model updates.
            assert after > before + 1.0

            # A new buffer size needs no rebuild: the delay stays the same.
            subprocess.run([require("jack_bufsize"), "480"], check=True,
                           capture_output=True)
            send(client, reader, "limit 0", "limit 0.0")
            recorded, _ = play(player, os.path.join(work, "impulse.wav"),
                               os.path.join(work, "impulse-480.wav"), 0.5)
            peak = int(np.argmax(np.abs(recorded)))
            assert peak - impulse_at == latency
            assert client.poll() is None, "drsn-jack exited"
            send(client, reader, "limit 30", "limit 30.0")

            send(client, reader, "bypass on", "bypass on")
            client.send_signal(signal.SIGUSR1)
            reader.wait_for("bypass off")
            client.send_signal(signal.SIGUSR2)
            reader.wait_for("residual on")
            send(client, reader, "mix 50", "mix 50")
            send(client, reader, "link off", "link off")
            # A bad model file is reported on stderr and changes nothing.
            client.stdin.write("model /nonexistent/model.drsn\n")
            status = send(client, reader, "status", "status ")
            assert "limit=30.0" in status, status
            assert "mix=50" in status, status
            assert "residual=on" in status, status
            assert "latency=960" in status, status
            assert "model=(built-in)" in status, status

            client.send_signal(signal.SIGTERM)
            assert client.wait(timeout=10) == 0
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
    print("drsn-jack test passed")


if __name__ == "__main__":
    main()
