#!/usr/bin/python3
"""Speech quality metrics: SI-SDR, STOI and ESTOI, written with numpy and scipy.

SI-SDR follows J. Le Roux, S. Wisdom, H. Erdogan and J. R. Hershey, "SDR -
half-baked or well done?", ICASSP 2019: both signals are made zero-mean, the
reference is scaled by the least-squares factor, and the ratio of the scaled
reference's energy to the residual's energy is given in dB.

STOI follows C. H. Taal, R. C. Hendriks, R. Heusdens and J. Jensen, "An
Algorithm for Intelligibility Prediction of Time-Frequency Weighted Noisy
Speech", IEEE TASLP 19(7), 2011. ESTOI follows J. Jensen and C. H. Taal, "An
Algorithm for Predicting the Intelligibility of Speech Masked by Modulated
Noise Maskers", IEEE TASLP 24(11), 2016. Both share these steps:

1. resample to 10 kHz (scipy.signal.resample_poly);
2. cut 256-sample frames with a 128-sample hop and a Hann window, drop the
   frames whose clean energy is more than 40 dB below the loudest clean frame,
   and join the remaining frames again by overlap-add;
3. take 512-point FFTs of the same framing of the joined signals and sum
   the power of 15 one-third-octave bands whose centres start at 150 Hz;
4. compare 30-frame (384 ms) segments of the band envelopes.

STOI scales each band of the processed segment to the clean segment's energy,
clips it to at most (1 + 10^(15/20)) times the clean envelope (beta = -15 dB)
and averages the correlation coefficients over bands and segments. ESTOI
normalises each segment's rows (bands over time) and then its columns
(frames over bands) to zero mean and unit norm, and averages the inner
products of matching columns over frames and segments.

Run as a program, it prints the three metrics of one pair of WAV files:

    /usr/bin/python3 tools/metrics.py CLEAN.wav PROCESSED.wav
"""

import argparse
import math
import sys
import warnings

import numpy as np
import scipy.io.wavfile
import scipy.signal

STOI_RATE_HZ = 10000
FRAME_SAMPLES = 256
HOP_SAMPLES = 128
FFT_SIZE = 512
BAND_COUNT = 15
LOWEST_CENTRE_HZ = 150.0
SEGMENT_FRAMES = 30
BETA_DB = -15.0
DYNAMIC_RANGE_DB = 40.0

_EPS = np.finfo(np.float64).eps


def _as_pair(reference, estimate):
    """Return both signals as 1-D float64 arrays of equal length."""
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.ndim != 1 or estimate.ndim != 1:
        raise ValueError("metrics take mono signals (1-D arrays)")
    if reference.shape != estimate.shape:
        raise ValueError(
            f"signal lengths differ: reference {reference.shape[0]} samples, "
            f"estimate {estimate.shape[0]} samples"
        )
    return reference, estimate


def si_sdr(reference, estimate):
    """Return the scale-invariant signal-to-distortion ratio in dB."""
    reference, estimate = _as_pair(reference, estimate)
    reference = reference - reference.mean()
    estimate = estimate - estimate.mean()
    reference_energy = np.dot(reference, reference)
    if reference_energy <= 0.0:
        raise ValueError("the reference signal is silent")
    scale = np.dot(estimate, reference) / reference_energy
    target = scale * reference
    residual = estimate - target
    return 10.0 * math.log10(
        (np.dot(target, target) + _EPS) / (np.dot(residual, residual) + _EPS)
    )


def _resample_to_stoi_rate(signal, rate_hz):
    rate_hz = int(rate_hz)
    if rate_hz == STOI_RATE_HZ:
        return signal
    divisor = math.gcd(rate_hz, STOI_RATE_HZ)
    return scipy.signal.resample_poly(
        signal, STOI_RATE_HZ // divisor, rate_hz // divisor
    )


def _analysis_window():
    # Symmetric Hann window of FRAME_SAMPLES + 2 points without its two zero
    # end points, so that no sample of a frame is weighted by zero.
    return np.hanning(FRAME_SAMPLES + 2)[1:-1]


def _frames(signal, window):
    """Return the windowed frames of signal, one per row."""
    count = (len(signal) - FRAME_SAMPLES) // HOP_SAMPLES + 1
    if count < 1:
        return np.zeros((0, FRAME_SAMPLES))
    starts = np.arange(count) * HOP_SAMPLES
    index = starts[:, None] + np.arange(FRAME_SAMPLES)[None, :]
    return signal[index] * window


def _overlap_add(frames):
    if len(frames) == 0:
        return np.zeros(0)
    signal = np.zeros((len(frames) - 1) * HOP_SAMPLES + FRAME_SAMPLES)
    for i, frame in enumerate(frames):
        signal[i * HOP_SAMPLES : i * HOP_SAMPLES + FRAME_SAMPLES] += frame
    return signal


def _remove_silent_frames(clean, processed):
    """Drop the frames more than DYNAMIC_RANGE_DB below the loudest clean one."""
    window = _analysis_window()
    clean_frames = _frames(clean, window)
    processed_frames = _frames(processed, window)
    energy_db = 20.0 * np.log10(np.linalg.norm(clean_frames, axis=1) + _EPS)
    if len(energy_db) == 0:
        return np.zeros(0), np.zeros(0)
    keep = energy_db > energy_db.max() - DYNAMIC_RANGE_DB
    return _overlap_add(clean_frames[keep]), _overlap_add(processed_frames[keep])


def _third_octave_matrix():
    """Return the [BAND_COUNT, FFT_SIZE/2 + 1] 0/1 matrix of band membership.

    Band k has centre 150 * 2^(k/3) Hz and edges 150 * 2^((2k -+ 1)/6) Hz.
    Each edge snaps to the nearest FFT bin, and a band takes the bins from its
    lower edge bin up to, but not including, its upper edge bin.
    """
    bin_hz = np.arange(FFT_SIZE // 2 + 1) * STOI_RATE_HZ / FFT_SIZE
    band = np.arange(BAND_COUNT)
    lower_hz = LOWEST_CENTRE_HZ * 2.0 ** ((2 * band - 1) / 6.0)
    upper_hz = LOWEST_CENTRE_HZ * 2.0 ** ((2 * band + 1) / 6.0)
    matrix = np.zeros((BAND_COUNT, len(bin_hz)))
    for k in band:
        low = int(np.argmin(np.abs(bin_hz - lower_hz[k])))
        high = int(np.argmin(np.abs(bin_hz - upper_hz[k])))
        matrix[k, low:high] = 1.0
    return matrix


def _band_envelopes(signal):
    """Return the [BAND_COUNT, frames] one-third-octave band magnitudes."""
    frames = _frames(signal, _analysis_window())
    spectrum = np.fft.rfft(frames, n=FFT_SIZE, axis=1)
    power = np.abs(spectrum) ** 2
    return np.sqrt(_third_octave_matrix() @ power.T)


def _segments(envelopes):
    """Return [segments, BAND_COUNT, SEGMENT_FRAMES] views of the envelopes."""
    windows = np.lib.stride_tricks.sliding_window_view(
        envelopes, SEGMENT_FRAMES, axis=1
    )
    return np.transpose(windows, (1, 0, 2))


def _segment_pairs(clean, processed, rate_hz):
    clean, processed = _as_pair(clean, processed)
    if rate_hz <= 0:
        raise ValueError(f"invalid sample rate {rate_hz}")
    clean = _resample_to_stoi_rate(clean, rate_hz)
    processed = _resample_to_stoi_rate(processed, rate_hz)
    clean, processed = _remove_silent_frames(clean, processed)
    clean_envelopes = _band_envelopes(clean)
    processed_envelopes = _band_envelopes(processed)
    if clean_envelopes.shape[1] < SEGMENT_FRAMES:
        raise ValueError(
            f"only {clean_envelopes.shape[1]} non-silent frames; STOI needs at "
            f"least {SEGMENT_FRAMES} ({SEGMENT_FRAMES * HOP_SAMPLES / STOI_RATE_HZ:.3f} s "
            "of speech)"
        )
    return _segments(clean_envelopes), _segments(processed_envelopes)


def _centre_and_normalise(values, axis):
    values = values - values.mean(axis=axis, keepdims=True)
    return values / (np.linalg.norm(values, axis=axis, keepdims=True) + _EPS)


def stoi(clean, processed, rate_hz):
    """Return the short-time objective intelligibility, about 0..1."""
    clean_segments, processed_segments = _segment_pairs(clean, processed, rate_hz)
    scale = np.linalg.norm(clean_segments, axis=2, keepdims=True) / (
        np.linalg.norm(processed_segments, axis=2, keepdims=True) + _EPS
    )
    clip_factor = 1.0 + 10.0 ** (-BETA_DB / 20.0)
    clipped = np.minimum(processed_segments * scale, clean_segments * clip_factor)
    correlation = np.sum(
        _centre_and_normalise(clean_segments, 2) * _centre_and_normalise(clipped, 2),
        axis=2,
    )
    return float(np.mean(correlation))


def estoi(clean, processed, rate_hz):
    """Return the extended short-time objective intelligibility, about 0..1."""
    clean_segments, processed_segments = _segment_pairs(clean, processed, rate_hz)
    clean_normalised = _centre_and_normalise(
        _centre_and_normalise(clean_segments, 2), 1
    )
    processed_normalised = _centre_and_normalise(
        _centre_and_normalise(processed_segments, 2), 1
    )
    per_segment = (
        np.sum(clean_normalised * processed_normalised, axis=(1, 2)) / SEGMENT_FRAMES
    )
    return float(np.mean(per_segment))


def read_mono(path):
    """Return (samples as float64 in -1..1, rate in Hz) of a mono WAV file."""
    with warnings.catch_warnings():
        # libsndfile adds a PEAK chunk to float WAV files, which scipy skips
        # with a warning.
        warnings.simplefilter("ignore", scipy.io.wavfile.WavFileWarning)
        rate_hz, data = scipy.io.wavfile.read(path)
    if data.ndim != 1:
        if data.shape[1] != 1:
            raise ValueError(f"{path}: expected a mono file, found {data.shape[1]} channels")
        data = data[:, 0]
    if data.dtype == np.uint8:
        data = (data.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float64) / float(-np.iinfo(data.dtype).min)
    else:
        data = data.astype(np.float64)
    return data, rate_hz


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Print SI-SDR, STOI and ESTOI of a processed mono WAV file "
        "against its clean reference."
    )
    parser.add_argument("clean", help="clean reference WAV file")
    parser.add_argument("processed", help="processed WAV file of the same length")
    arguments = parser.parse_args(argv)
    clean, clean_rate = read_mono(arguments.clean)
    processed, processed_rate = read_mono(arguments.processed)
    if clean_rate != processed_rate:
        print(
            f"metrics.py: sample rates differ: {clean_rate} Hz and {processed_rate} Hz",
            file=sys.stderr,
        )
        return 1
    try:
        print(f"SI-SDR {si_sdr(clean, processed):.3f} dB")
        print(f"STOI   {stoi(clean, processed, clean_rate):.4f}")
        print(f"ESTOI  {estoi(clean, processed, clean_rate):.4f}")
    except ValueError as error:
        print(f"metrics.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
