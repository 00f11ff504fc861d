"""Find training noise clips that are copies of a held-out recording.

Game packages share sounds from the same public libraries, so a recording held out for
evaluation can reach the training split again through another package, re-encoded, resampled,
cropped or at another level. Matching on file names misses that; this module matches the audio.

Each clip becomes a sequence of band energies (100 ms frames every 50 ms, 16 bands from 100 Hz
to 5 kHz, in dB). A 3 s stretch of one clip is compared with every 3 s stretch of the other by
normalised correlation. Each band's mean and each frame's mean over the stretch are removed
first: a change of level or a fixed equaliser then does not matter, and neither does a loudness
envelope that many unrelated sounds share (a pass-by, a blast and its decay). What is left is
how the spectrum moves over time. Two different recordings of the same kind of noise (two rain
beds) correlate below 0.5, and a copy correlates near 1. Clips shorter than 3 s are not checked.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

RATE_HZ = 48000
FRAME = 4800
HOP = 2400
WINDOW_FRAMES = 60
TEMPLATES_PER_CLIP = 4
COPY_THRESHOLD = 0.9
# Stretches that vary by less than 0.1 dB RMS (digital silence, a constant tone) carry no
# pattern to match.
MIN_NORM = 0.1 * np.sqrt(WINDOW_FRAMES * 16)


def _band_matrix():
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE_HZ)
    edges = np.geomspace(100.0, 5000.0, 17)
    return np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]).astype(np.float32)


_BANDS = _band_matrix()


def band_energies(x):
    """Return the band energies in dB of a 48 kHz clip as [frames, 16]."""
    if len(x) < FRAME:
        return np.zeros((0, _BANDS.shape[0]), dtype=np.float32)
    frames = sliding_window_view(x, FRAME)[::HOP] * np.hanning(FRAME).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return (10 * np.log10(power @ _BANDS.T + 1e-10)).astype(np.float32)


def templates(features):
    """Return up to TEMPLATES_PER_CLIP stretches spread over the clip as [K, WINDOW_FRAMES * 16],
    each with its band and frame means removed and scaled to unit norm."""
    n = len(features) - WINDOW_FRAMES + 1
    if n < 1:
        return np.zeros((0, WINDOW_FRAMES * _BANDS.shape[0]), dtype=np.float32)
    out = []
    for start in np.unique(np.linspace(0, n - 1, TEMPLATES_PER_CLIP).astype(int)):
        t = features[start: start + WINDOW_FRAMES]
        t = t - t.mean(axis=0)
        t = t - t.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(t)
        if norm >= MIN_NORM:
            out.append((t / norm).ravel())
    return np.array(out, dtype=np.float32).reshape(len(out), WINDOW_FRAMES * _BANDS.shape[0])


def best_match(features, patterns):
    """Return the highest normalised correlation of each pattern (from templates()) with any
    stretch of the clip."""
    n = len(features) - WINDOW_FRAMES + 1
    if n < 1 or len(patterns) == 0:
        return np.zeros(len(patterns), dtype=np.float32)
    windows = sliding_window_view(features, (WINDOW_FRAMES, features.shape[1]))[:, 0]
    scores = windows.reshape(n, -1) @ patterns.T
    # Norm of each stretch after removing its band means and its frame means.
    bands = features.shape[1]
    f = features.astype(np.float64)
    band_sums = sliding_window_view(f, WINDOW_FRAMES, axis=0).sum(axis=2)
    squares = sliding_window_view((f ** 2).sum(axis=1), WINDOW_FRAMES).sum(axis=1)
    frame_means = sliding_window_view(f.mean(axis=1) ** 2, WINDOW_FRAMES).sum(axis=1)
    grand = band_sums.sum(axis=1) / (WINDOW_FRAMES * bands)
    residual = (squares - (band_sums ** 2).sum(axis=1) / WINDOW_FRAMES - bands * frame_means
                + WINDOW_FRAMES * bands * grand ** 2)
    norm = np.sqrt(np.maximum(residual, 0.0))
    valid = norm >= MIN_NORM
    if not valid.any():
        return np.zeros(len(patterns), dtype=np.float32)
    return (scores[valid] / norm[valid, None]).max(axis=0)


def find_copies(candidates, held_out):
    """Return {candidate index: (held-out index, correlation)} for every candidate clip that
    matches a held-out clip in either direction. Both arguments are lists of 48 kHz clips."""
    cand_f = [band_energies(x) for x in candidates]
    held_f = [band_energies(x) for x in held_out]
    cand_t = [templates(f) for f in cand_f]
    held_t = [templates(f) for f in held_f]
    copies = {}
    for i, (cf, ct) in enumerate(zip(cand_f, cand_t)):
        for j, (hf, ht) in enumerate(zip(held_f, held_t)):
            score = max(best_match(cf, ht).max(initial=0.0), best_match(hf, ct).max(initial=0.0))
            if score >= COPY_THRESHOLD and score > copies.get(i, (None, 0.0))[1]:
                copies[i] = (j, float(score))
    return copies
