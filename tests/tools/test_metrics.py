#!/usr/bin/python3
"""Known cases for tools/metrics.py: SI-SDR, STOI and ESTOI.

No packaged implementation of these metrics exists here to compare with, so
the tests check properties that follow from the published definitions.
"""

import os
import sys
import unittest

import numpy as np
import scipy.signal

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
)
import metrics  # noqa: E402


def speech_like(rate_hz, seconds=3.0, seed=0):
    """Return a voiced signal with syllable-rate envelope and short pauses.

    A harmonic complex with a gliding pitch of 100..180 Hz is shaped into
    syllables of 150..300 ms, separated by 50..200 ms of silence, so that its
    band envelopes vary at the 2..6 Hz rate of speech.
    """
    rng = np.random.default_rng(seed)
    count = int(rate_hz * seconds)
    time = np.arange(count) / rate_hz
    pitch_hz = 140.0 + 40.0 * np.sin(2.0 * np.pi * 0.7 * time)
    phase = 2.0 * np.pi * np.cumsum(pitch_hz) / rate_hz
    harmonics = min(40, int(rate_hz / 2 / 190))
    voiced = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))

    envelope = np.zeros(count)
    position = int(0.1 * rate_hz)
    while position < count:
        length = int(rng.uniform(0.15, 0.3) * rate_hz)
        end = min(count, position + length)
        envelope[position:end] = np.hanning(length)[: end - position] * rng.uniform(0.3, 1.0)
        position = end + int(rng.uniform(0.05, 0.2) * rate_hz)
    signal = voiced * envelope
    return signal / np.max(np.abs(signal))


def white_noise(count, seed):
    return np.random.default_rng(seed).standard_normal(count)


def noise_at_snr(clean, noise, snr_db):
    """Return noise scaled so that clean + noise has the given SNR."""
    return noise * np.linalg.norm(clean) / np.linalg.norm(noise) * 10.0 ** (-snr_db / 20.0)


class SiSdrTest(unittest.TestCase):
    def setUp(self):
        self.clean = speech_like(16000)

    def test_identical_is_very_high(self):
        self.assertGreater(metrics.si_sdr(self.clean, self.clean), 100.0)

    def test_orthogonal_error_matches_analytic_value(self):
        reference = self.clean - self.clean.mean()
        error = white_noise(len(reference), seed=3)
        error -= error.mean()
        error -= np.dot(error, reference) / np.dot(reference, reference) * reference
        error *= np.linalg.norm(reference) / np.linalg.norm(error) * 10.0 ** (-7.5 / 20.0)
        expected = 10.0 * np.log10(np.dot(reference, reference) / np.dot(error, error))
        self.assertAlmostEqual(expected, 7.5, places=9)
        self.assertAlmostEqual(metrics.si_sdr(reference, reference + error), expected, places=6)

    def test_estimate_scale_does_not_change_value(self):
        noisy = self.clean + noise_at_snr(self.clean, white_noise(len(self.clean), 4), 5.0)
        value = metrics.si_sdr(self.clean, noisy)
        self.assertAlmostEqual(metrics.si_sdr(self.clean, 0.01 * noisy), value, places=6)
        self.assertAlmostEqual(metrics.si_sdr(self.clean, 37.0 * noisy), value, places=6)

    def test_reference_scale_does_not_change_value(self):
        noisy = self.clean + noise_at_snr(self.clean, white_noise(len(self.clean), 5), 0.0)
        value = metrics.si_sdr(self.clean, noisy)
        self.assertAlmostEqual(metrics.si_sdr(4.0 * self.clean, noisy), value, places=6)

    def test_offset_is_ignored(self):
        noisy = self.clean + noise_at_snr(self.clean, white_noise(len(self.clean), 6), 10.0)
        value = metrics.si_sdr(self.clean, noisy)
        self.assertAlmostEqual(metrics.si_sdr(self.clean + 0.3, noisy - 0.2), value, places=6)

    def test_length_mismatch_raises(self):
        with self.assertRaisesRegex(ValueError, "lengths differ"):
            metrics.si_sdr(self.clean, self.clean[:-1])

    def test_silent_reference_raises(self):
        with self.assertRaisesRegex(ValueError, "silent"):
            metrics.si_sdr(np.zeros(1000), np.ones(1000))


class IntelligibilityTest(unittest.TestCase):
    RATE_HZ = 16000

    @classmethod
    def setUpClass(cls):
        cls.clean = speech_like(cls.RATE_HZ)
        cls.noise = white_noise(len(cls.clean), seed=1)

    def noisy(self, snr_db):
        return self.clean + noise_at_snr(self.clean, self.noise, snr_db)

    def test_identical_gives_one(self):
        self.assertAlmostEqual(metrics.stoi(self.clean, self.clean, self.RATE_HZ), 1.0, places=9)
        self.assertAlmostEqual(metrics.estoi(self.clean, self.clean, self.RATE_HZ), 1.0, places=9)

    def test_processed_scale_does_not_change_value(self):
        noisy = self.noisy(0.0)
        for function in (metrics.stoi, metrics.estoi):
            value = function(self.clean, noisy, self.RATE_HZ)
            for gain in (0.01, 25.0):
                with self.subTest(metric=function.__name__, gain=gain):
                    self.assertAlmostEqual(function(self.clean, gain * noisy, self.RATE_HZ), value, places=9)

    def test_more_noise_lowers_scores(self):
        snrs_db = (20.0, 10.0, 5.0, 0.0, -5.0, -10.0)
        for function in (metrics.stoi, metrics.estoi):
            scores = [function(self.clean, self.noisy(snr), self.RATE_HZ) for snr in snrs_db]
            for higher_snr, lower_snr, better, worse in zip(snrs_db, snrs_db[1:], scores, scores[1:]):
                with self.subTest(metric=function.__name__, snr_db=lower_snr):
                    self.assertLess(worse, better, f"{lower_snr} dB scored not below {higher_snr} dB")

    def test_independent_noise_scores_near_zero(self):
        self.assertLess(abs(metrics.estoi(self.clean, self.noise, self.RATE_HZ)), 0.05)
        # STOI does not reach 0 here: its clipping (beta = -15 dB) makes the
        # processed envelope follow the clean one wherever the clean envelope
        # is far below the noise, which correlates them.
        independent = metrics.stoi(self.clean, self.noise, self.RATE_HZ)
        self.assertLess(independent, metrics.stoi(self.clean, self.noisy(-10.0), self.RATE_HZ))

    def test_sample_rate_changes_little(self):
        clean_48k = speech_like(48000)
        noisy_48k = clean_48k + noise_at_snr(clean_48k, white_noise(len(clean_48k), 2), -5.0)
        clean_16k = scipy.signal.resample_poly(clean_48k, 1, 3)
        noisy_16k = scipy.signal.resample_poly(noisy_48k, 1, 3)
        for function in (metrics.stoi, metrics.estoi):
            with self.subTest(metric=function.__name__):
                self.assertAlmostEqual(
                    function(clean_48k, noisy_48k, 48000),
                    function(clean_16k, noisy_16k, 16000),
                    delta=0.01,
                )

    def test_appended_silence_is_removed(self):
        silence = np.zeros(self.RATE_HZ)
        clean = np.concatenate([self.clean, silence])
        noisy = np.concatenate([self.noisy(5.0), silence])
        for function in (metrics.stoi, metrics.estoi):
            with self.subTest(metric=function.__name__):
                self.assertAlmostEqual(
                    function(clean, noisy, self.RATE_HZ),
                    function(self.clean, self.noisy(5.0), self.RATE_HZ),
                    places=3,
                )

    def test_length_mismatch_raises(self):
        for function in (metrics.stoi, metrics.estoi):
            with self.subTest(metric=function.__name__):
                with self.assertRaisesRegex(ValueError, "lengths differ"):
                    function(self.clean, self.clean[:-10], self.RATE_HZ)

    def test_too_short_raises(self):
        short = self.clean[: self.RATE_HZ // 10]
        with self.assertRaisesRegex(ValueError, "non-silent frames"):
            metrics.stoi(short, short, self.RATE_HZ)


if __name__ == "__main__":
    unittest.main()
