#!/usr/bin/python3
"""Word-onset test: the renderer keeps the first 50 ms of every word of clean speech.

Requirement: on clean speech, the energy of the first 50 ms of each word after processing is
within 1 dB of the input's. The clean speech is tests/data/onset-speech.flac (real recordings
of six speakers, see tests/data/README.md). tools/onsets.py finds the onsets in the input and
measures both signals; its docstring gives the detection rule. The renderer comes from the
environment variable DRSN_DENOISE (meson test sets it) and runs with its built-in model.

The onset table of every rendering is printed, so the test log shows the margins even when the
test passes.
"""

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import soundfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import onsets  # noqa: E402

DRSN_DENOISE = os.environ.get("DRSN_DENOISE")
CLIP = os.path.join(HERE, "..", "data", "onset-speech.flac")
TOLERANCE_DB = 1.0
# The clip has 16 onsets by the rule of tools/onsets.py. Fewer would mean that the clip or the
# rule has changed, so the test would check less than it claims.
MIN_ONSETS = 12
RATE_HZ = 48000


def tone_burst(seconds, rate_hz=RATE_HZ, amplitude=0.3):
    time_s = np.arange(int(seconds * rate_hz)) / rate_hz
    return amplitude * np.sin(2 * np.pi * 440.0 * time_s)


def silence(seconds, rate_hz=RATE_HZ):
    return np.zeros(int(round(seconds * rate_hz)))


class OnsetRuleTest(unittest.TestCase):
    def test_onset_after_long_pause(self):
        signal = np.concatenate([silence(0.2), tone_burst(0.3), silence(0.15), tone_burst(0.3)])
        self.assertEqual(onsets.find_onsets(signal, RATE_HZ), [9600, 31200])

    def test_short_pause_is_not_onset(self):
        signal = np.concatenate([silence(0.2), tone_burst(0.3), silence(0.09), tone_burst(0.3)])
        self.assertEqual(onsets.find_onsets(signal, RATE_HZ), [9600])

    def test_word_in_first_100_ms_ignored(self):
        signal = np.concatenate([silence(0.05), tone_burst(0.3), silence(0.2), tone_burst(0.3)])
        self.assertEqual(onsets.find_onsets(signal, RATE_HZ), [26400])

    def test_quiet_frames_below_threshold(self):
        # 40 dB below the peak is under the -30 dB threshold, so the quiet burst is a pause.
        signal = np.concatenate([silence(0.2), tone_burst(0.3, amplitude=0.003), tone_burst(0.3)])
        self.assertEqual(onsets.find_onsets(signal, RATE_HZ), [24000])

    def test_silent_signal_has_no_onsets(self):
        self.assertEqual(onsets.find_onsets(silence(1.0), RATE_HZ), [])

    def test_compare_measures_50_ms_window(self):
        clean = np.concatenate([silence(0.2), tone_burst(0.3)])
        processed = clean.copy()
        processed[9600:9600 + 2400] *= 0.5
        rows = onsets.compare_onsets(clean, processed, RATE_HZ)
        self.assertEqual(len(rows), 1)
        self.assertAlmostEqual(rows[0]["time_s"], 0.2)
        self.assertAlmostEqual(rows[0]["difference_db"], 20 * np.log10(0.5), places=6)

    def test_compare_rejects_length_mismatch(self):
        with self.assertRaises(ValueError):
            onsets.compare_onsets(silence(1.0), silence(0.9), RATE_HZ)


class CommandLineTest(unittest.TestCase):
    def test_tolerance_sets_exit_status(self):
        clean = np.concatenate([silence(0.2), tone_burst(0.3), silence(0.2), tone_burst(0.3)])
        with tempfile.TemporaryDirectory() as directory:
            clean_path = os.path.join(directory, "clean.wav")
            processed_path = os.path.join(directory, "processed.wav")
            soundfile.write(clean_path, clean, RATE_HZ, subtype="FLOAT")
            soundfile.write(processed_path, 0.5 * clean, RATE_HZ, subtype="FLOAT")
            command = [sys.executable, os.path.join(HERE, "..", "..", "tools", "onsets.py"),
                       clean_path, processed_path]
            plain = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
            strict = subprocess.run(command + ["--tolerance", "1"], capture_output=True, text=True,
                                    timeout=120, check=False)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        self.assertIn("2 onsets; worst difference -6.02 dB at 0.20 s", plain.stdout)
        self.assertEqual(strict.returncode, 1, strict.stderr)


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class RendererOnsetTest(unittest.TestCase):
    def render(self, directory, samples, rate_hz, name):
        in_path = os.path.join(directory, f"{name}-in.wav")
        out_path = os.path.join(directory, f"{name}-out.wav")
        soundfile.write(in_path, samples, rate_hz, subtype="FLOAT")
        result = subprocess.run([DRSN_DENOISE, "-q", in_path, out_path], capture_output=True,
                                text=True, timeout=300, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        processed, processed_rate = onsets.read_mono(out_path)
        self.assertEqual(processed_rate, rate_hz)
        self.assertEqual(len(processed), len(samples))
        return processed

    def test_clean_speech_onsets_within_1_db(self):
        clean, rate_hz = onsets.read_mono(CLIP)
        # The clip as stored (active level -26 dBFS), 14 dB quieter (the quietest training level),
        # and as 16-bit PCM with triangular dither, whose floor near -96 dBFS replaces the
        # digital silence between its words, as in a real recording.
        generator = np.random.default_rng(1)
        dither = generator.uniform(-0.5, 0.5, len(clean)) + generator.uniform(-0.5, 0.5, len(clean))
        dithered = np.clip(np.round(clean * 32768 + dither), -32768, 32767) / 32768
        cases = {"+0 dB": clean, "-14 dB": clean * 10 ** (-14 / 20), "16-bit dither": dithered}
        for case, scaled in cases.items():
            with self.subTest(case=case), tempfile.TemporaryDirectory() as directory:
                processed = self.render(directory, scaled, rate_hz, case.replace(" ", "-"))
                rows = onsets.compare_onsets(scaled, processed, rate_hz)
                worst = onsets.worst_onset(rows)
                print(f"\nclip at {case}:")
                print(onsets.format_table(rows))
                print(f"{len(rows)} onsets; worst difference {worst['difference_db']:+.2f} dB "
                      f"at {worst['time_s']:.2f} s")

                self.assertGreaterEqual(len(rows), MIN_ONSETS)
                for row in rows:
                    with self.subTest(onset_s=round(row["time_s"], 2)):
                        self.assertLessEqual(
                            abs(row["difference_db"]), TOLERANCE_DB,
                            f"onset at {row['time_s']:.2f} s: input {row['input_db']:.2f} dBFS, "
                            f"output {row['output_db']:.2f} dBFS")


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class CleanSpeechInputTest(unittest.TestCase):
    """bench/clean_speech.py rejects unusable clips with a message that names the clip."""

    def run_rejected(self, directory, samples, options=()):
        """Run clean_speech.py on samples, check that it rejects them, and return its stderr."""
        clip = os.path.join(directory, "clip.wav")
        soundfile.write(clip, samples, RATE_HZ, subtype="FLOAT")
        manifest = os.path.join(directory, "manifest.csv")
        with open(manifest, "w", encoding="utf-8") as stream:
            stream.write("id,snr_db,clean,noisy\n0,0,clip.wav,clip.wav\n")
        result = subprocess.run(
            [sys.executable, os.path.join(HERE, "..", "..", "bench", "clean_speech.py"),
             "--manifest", manifest, "--work-dir", os.path.join(directory, "work"),
             "--system", f"x={DRSN_DENOISE} -q -f {{in}} {{out}}", *options],
            capture_output=True, text=True, timeout=300, check=False)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(clip, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        return result.stderr

    def test_unusable_clips(self):
        speech = tone_burst(0.5)
        with_nan = speech.copy()
        with_nan[100] = np.nan
        last_only = silence(1.0)
        last_only[-1] = 0.5
        constant = np.concatenate([silence(0.2), np.full(RATE_HZ, 0.01)])
        cases = {
            "stereo": (np.stack([silence(0.5), speech], axis=1), ()),
            "NaN": (with_nan, ()),
            "NaN, dithered": (with_nan, ("--dither",)),
            "empty": (np.zeros(0), ("--dither",)),
            "last sample only": (last_only, ("--start-on-speech",)),
            "a constant after silence": (constant, ("--start-on-speech",)),
        }
        for case, (samples, options) in cases.items():
            with self.subTest(case=case), tempfile.TemporaryDirectory() as directory:
                print(f"{case}: {self.run_rejected(directory, samples, options).strip()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
