#!/usr/bin/python3
"""Tests of tools/gain_stats.py on synthetic signals with known gains.

The flickering-gain cases use an impulse train with one impulse per 10 ms hop, placed at the
centre of every analysis frame. The square-root Hann window is 1 there and 0 at the frame's
first sample, where the previous frame's impulse sits, so only one impulse reaches each frame.
Its spectrum is flat, and scaling the impulse by g scales every band energy of that frame by
g^2. The gain
that the tool measures is then exactly the gain that the test applied.
"""

import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import soundfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.join(HERE, "..", "..", "tools")
sys.path.insert(0, TOOLS)
import gain_stats  # noqa: E402

RATE_HZ = 48000
HOP = 480


def white_noise(seconds, seed=0, rate_hz=RATE_HZ):
    return 0.05 * np.random.default_rng(seed).standard_normal(int(seconds * rate_hz))


def impulse_train(frame_count, frame_gains_db=None):
    """Return an impulse train whose analysis frame t contains one impulse, scaled by gain t."""
    samples = np.zeros((frame_count + 1) * HOP)
    gains = np.zeros(frame_count) if frame_gains_db is None else np.asarray(frame_gains_db)
    samples[HOP * np.arange(1, frame_count + 1)] = 0.5 * 10.0 ** (gains / 20.0)
    return samples


class BandWeightTest(unittest.TestCase):
    def test_weights_of_every_bin_sum_to_1(self):
        for rate_hz in (48000, 44100, 16000):
            with self.subTest(rate_hz=rate_hz):
                window, _ = gain_stats.framing(rate_hz)
                weights = gain_stats.band_weights(window, rate_hz)
                np.testing.assert_allclose(weights.sum(axis=0), 1.0)

    def test_bin_on_centre_is_in_one_band(self):
        weights = gain_stats.band_weights(960, RATE_HZ)
        # Bins are 50 Hz wide, so bin 30 is at 1500 Hz, the centre of band 14.
        self.assertEqual(weights[14, 30], 1.0)
        self.assertEqual(weights[:, 30].sum(), 1.0)


class NoiseOnlyFrameTest(unittest.TestCase):
    def test_guard_around_speech(self):
        clean = np.zeros(RATE_HZ)
        clean[48000 // 2:48000 // 2 + 4800] = white_noise(0.1)
        window, hop = gain_stats.framing(RATE_HZ)
        mask = gain_stats.noise_only_frames(gain_stats.power_spectra(clean, window, hop))
        # Speech fills samples 24000..28799, so frames 49..59 touch it. The guard adds 5 frames
        # on either side.
        speech_or_guard = np.flatnonzero(~mask)
        self.assertEqual(speech_or_guard[0], 44)
        self.assertEqual(speech_or_guard[-1], 64)
        self.assertEqual(len(speech_or_guard), 21)

    def test_silent_reference_is_all_noise(self):
        power = np.zeros((10, 481))
        self.assertTrue(gain_stats.noise_only_frames(power).all())

    def test_short_stretches_dropped(self):
        mask = np.array([True] * 4 + [False] + [True] * 5 + [False] * 2 + [True] * 7)
        self.assertEqual(gain_stats.stretches(mask), [(5, 10), (12, 19)])


class GainStatisticsTest(unittest.TestCase):
    def test_constant_gain_has_zero_variance(self):
        noisy = white_noise(3.0)
        processed = noisy * 10.0 ** (-20.0 / 20.0)
        statistics = gain_stats.gain_statistics(noisy, processed, np.zeros_like(noisy), RATE_HZ)
        self.assertAlmostEqual(statistics["gain_std_db"], 0.0, places=9)
        self.assertAlmostEqual(statistics["flicker_db"], 0.0, places=9)
        self.assertAlmostEqual(statistics["attenuation_db"], 20.0, places=9)
        self.assertEqual(statistics["bands"], 32)

    def test_random_flicker_matches_applied_gains(self):
        frame_count = 3000
        gains_db = np.random.default_rng(1).uniform(-20.0, 0.0, frame_count)
        noisy = impulse_train(frame_count)
        processed = impulse_train(frame_count, gains_db)
        statistics = gain_stats.gain_statistics(noisy, processed, np.zeros_like(noisy), RATE_HZ)

        self.assertAlmostEqual(statistics["gain_std_db"], np.std(gains_db), places=6)
        self.assertAlmostEqual(statistics["flicker_db"], np.mean(np.abs(np.diff(gains_db))), places=6)
        self.assertAlmostEqual(statistics["attenuation_db"], -np.mean(gains_db), places=6)
        # A gain uniform over 20 dB has a standard deviation of 20 / sqrt(12) dB, and two
        # independent draws differ by 20 / 3 dB on average.
        self.assertAlmostEqual(statistics["gain_std_db"], 20.0 / np.sqrt(12.0), delta=0.15)
        self.assertAlmostEqual(statistics["flicker_db"], 20.0 / 3.0, delta=0.2)

    def test_speech_frames_are_ignored(self):
        frame_count = 400
        clean = np.zeros((frame_count + 1) * HOP)
        clean[150 * HOP:250 * HOP] = white_noise(1.0, seed=2)
        gains_db = np.zeros(frame_count)
        # Speech touches frames 149..249, so frames 144..254 are speech or guard and a gain
        # change there must not count.
        gains_db[144:255] = np.random.default_rng(3).uniform(-30.0, 0.0, 111)
        gains_db[np.r_[0:144, 255:frame_count]] = -12.0
        statistics = gain_stats.gain_statistics(
            impulse_train(frame_count), impulse_train(frame_count, gains_db), clean, RATE_HZ)
        self.assertAlmostEqual(statistics["gain_std_db"], 0.0, places=9)
        self.assertAlmostEqual(statistics["flicker_db"], 0.0, places=9)
        self.assertAlmostEqual(statistics["attenuation_db"], 12.0, places=9)
        self.assertEqual(statistics["noise_frames"], 144 + 145)

    def test_stretch_means_are_removed(self):
        # Two stretches at different steady gains: a slow change between words is not flicker.
        frame_count = 400
        clean = np.zeros((frame_count + 1) * HOP)
        clean[195 * HOP:205 * HOP] = white_noise(0.1, seed=4)
        gains_db = np.where(np.arange(frame_count) < 200, -6.0, -18.0)
        statistics = gain_stats.gain_statistics(
            impulse_train(frame_count), impulse_train(frame_count, gains_db), clean, RATE_HZ)
        self.assertAlmostEqual(statistics["gain_std_db"], 0.0, places=9)
        self.assertAlmostEqual(statistics["flicker_db"], 0.0, places=9)
        # Speech touches frames 194..204, so the stretches are frames 0..188 and 210..399.
        self.assertAlmostEqual(statistics["attenuation_db"], (189 * 6.0 + 190 * 18.0) / 379, places=6)

    def test_skip_leaves_out_start(self):
        frame_count = 300
        gains_db = np.full(frame_count, -10.0)
        gains_db[:50] = np.random.default_rng(5).uniform(-30.0, 0.0, 50)
        noisy = impulse_train(frame_count)
        processed = impulse_train(frame_count, gains_db)
        silent = np.zeros_like(noisy)
        statistics = gain_stats.gain_statistics(noisy, processed, silent, RATE_HZ, skip_seconds=0.5)
        self.assertAlmostEqual(statistics["gain_std_db"], 0.0, places=9)
        self.assertAlmostEqual(statistics["attenuation_db"], 10.0, places=9)
        self.assertEqual(statistics["noise_frames"], frame_count - 50)
        unskipped = gain_stats.gain_statistics(noisy, processed, silent, RATE_HZ)
        self.assertGreater(unskipped["gain_std_db"], 1.0)
        with self.assertRaises(ValueError):
            gain_stats.gain_statistics(noisy, processed, silent, RATE_HZ, skip_seconds=-0.1)

    def test_all_speech_gives_no_statistics(self):
        noisy = white_noise(1.0)
        statistics = gain_stats.gain_statistics(noisy, noisy, noisy, RATE_HZ)
        self.assertEqual(statistics["noise_frames"], 0)
        self.assertIsNone(statistics["gain_std_db"])

    def test_length_mismatch_rejected(self):
        with self.assertRaises(ValueError):
            gain_stats.gain_statistics(np.zeros(4800), np.zeros(4800), np.zeros(4799), RATE_HZ)


class CommandLineTest(unittest.TestCase):
    def test_manifest_mode_prints_mean(self):
        with tempfile.TemporaryDirectory() as directory:
            noisy = white_noise(2.0, seed=5)
            soundfile.write(os.path.join(directory, "a_noisy.wav"), noisy, RATE_HZ, subtype="FLOAT")
            soundfile.write(os.path.join(directory, "a_clean.wav"), np.zeros_like(noisy), RATE_HZ,
                            subtype="FLOAT")
            os.mkdir(os.path.join(directory, "out"))
            soundfile.write(os.path.join(directory, "out", "a.wav"), 0.5 * noisy, RATE_HZ,
                            subtype="FLOAT")
            with open(os.path.join(directory, "set.csv"), "w", encoding="utf-8") as stream:
                stream.write("id,snr_db,clean,noisy\na,0,a_clean.wav,a_noisy.wav\n")
            result = subprocess.run(
                [sys.executable, os.path.join(TOOLS, "gain_stats.py"), "--manifest",
                 os.path.join(directory, "set.csv"), "--processed-dir",
                 os.path.join(directory, "out")],
                capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("mean of 1 of 1 files", result.stdout)
        self.assertIn("gain_std_db 0.00", result.stdout)
        self.assertIn("attenuation_db 6.02", result.stdout)

    def test_missing_output_is_reported(self):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "set.csv"), "w", encoding="utf-8") as stream:
                stream.write("id,snr_db,clean,noisy\na,0,a_clean.wav,a_noisy.wav\n")
            result = subprocess.run(
                [sys.executable, os.path.join(TOOLS, "gain_stats.py"), "--manifest",
                 os.path.join(directory, "set.csv"), "--processed-dir", directory],
                capture_output=True, text=True, timeout=120, check=False)
        self.assertEqual(result.returncode, 1)
        self.assertIn("a_noisy.wav", result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
