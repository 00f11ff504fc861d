"""Shared helpers of the plugin and drsn-jack tests: a private jackd on the
dummy backend, a noisy speech file and SI-SDR."""

import contextlib
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

RATE = 48000
SENTENCE = ("Noise suppression keeps the voice clear while the fan, the "
            "traffic and the hum fade into the background.")


def require(program):
    """Return the full path of program, or raise if it is not installed."""
    path = shutil.which(program)
    if not path:
        raise SystemExit(f"{program} not found; install the package that "
                         "ships it (see .ci/packages)")
    return path


@contextlib.contextmanager
def jack_server(prefix, period=960):
    """Run jackd with a unique server name on the dummy backend.

    Synchronous mode (-S) makes the server wait for every client in each
    cycle, so that a slow cycle delays the clock instead of dropping audio.
    The default period of 960 frames is 20 ms at 48 kHz.
    Sets JACK_DEFAULT_SERVER for the block and yields the server name.
    """
    name = f"{prefix}-{os.getpid()}"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen(
        [require("jackd"), "--no-realtime", "-S", "-n", name, "-d", "dummy",
         "-r", str(RATE), "-p", str(period)],
        stdout=log, stderr=subprocess.STDOUT)
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    os.environ["JACK_DEFAULT_SERVER"] = name
    try:
        ready = subprocess.run(
            [require("jack_wait"), "-s", name, "-w", "-t", "10"],
            capture_output=True, text=True)
        if ready.returncode != 0 or server.poll() is not None:
            log.seek(0)
            raise RuntimeError("jackd did not start: "
                               + log.read().decode(errors="replace"))
        yield name
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        else:
            os.environ["JACK_DEFAULT_SERVER"] = previous


def make_noisy_speech(directory, seconds_of_noise_lead=0.5, snr_db=5.0):
    """Write clean.wav and noisy.wav (float, 48 kHz) into directory.

    The speech is espeak-ng's reading of SENTENCE, the noise a fixed mix of
    white noise and 100 Hz hum at snr_db. Returns (clean, noisy) arrays.
    """
    spoken = os.path.join(directory, "espeak.wav")
    subprocess.run([require("espeak-ng"), "-w", spoken, SENTENCE], check=True)
    speech, rate = sf.read(spoken, dtype="float64")
    divisor = np.gcd(RATE, rate)
    speech = resample_poly(speech, RATE // divisor, rate // divisor)
    lead = np.zeros(int(seconds_of_noise_lead * RATE))
    clean = np.concatenate([lead, speech, lead])
    clean *= 0.3 / np.max(np.abs(clean))

    generator = np.random.default_rng(20240501)
    t = np.arange(len(clean)) / RATE
    noise = generator.standard_normal(len(clean)) + 2.0 * np.sin(
        2 * np.pi * 100.0 * t)
    gain = np.sqrt(np.mean(clean ** 2) / np.mean(noise ** 2)) * 10 ** (
        -snr_db / 20)
    noisy = clean + gain * noise
    sf.write(os.path.join(directory, "clean.wav"), clean.astype(np.float32),
             RATE, subtype="FLOAT")
    sf.write(os.path.join(directory, "noisy.wav"), noisy.astype(np.float32),
             RATE, subtype="FLOAT")
    return clean.astype(np.float32), noisy.astype(np.float32)


def si_sdr(reference, estimate):
    """Scale-invariant signal-to-distortion ratio in dB."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    scale = np.dot(estimate, reference) / np.dot(reference, reference)
    target = scale * reference
    error = estimate - target
    return 10 * np.log10(np.sum(target ** 2) / np.sum(error ** 2))


class LineReader:
    """Collect the lines of a child's text stream in a background thread."""

    def __init__(self, stream):
        self.lines = queue.Queue()
        self.seen = []
        thread = threading.Thread(target=self._pump, args=(stream,),
                                  daemon=True)
        thread.start()

    def _pump(self, stream):
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text, timeout=10.0):
        """Return the next line that contains text; raise on timeout or EOF."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = None
                remaining = 0
            if line is not None:
                self.seen.append(line)
                if text in line:
                    return line
                continue
            if remaining <= 0 or line is None:
                raise AssertionError(
                    f"timed out or stream ended before {text!r}; output "
                    f"so far: {''.join(self.seen)}")
