"""Find training noise clips that are copies of a held-out recording.

Game packages share sounds from the same public libraries, so a recording held out for
evaluation can reach the training split again through another package, re-encoded, resampled,
cropped or at another level. Matching on file names misses that, so this module matches the
audio.

Each clip becomes a sequence of band energies (100 ms frames every 50 ms, 16 bands from 100 Hz
to 5 kHz, in dB). A 3 s stretch of one clip is compared with every 3 s stretch of the other by
normalised correlation. The other clip's frames start at four points a quarter hop apart, so a
copy cut off the 50 ms grid still lines up to within 6.25 ms. Each band's mean and each frame's
mean over the stretch are removed first, so a change of level or a fixed equaliser does not
matter. Nor does a loudness envelope that many unrelated sounds share (a pass-by, a blast and
its decay). What is left is how the spectrum moves over time. Two different
recordings of the same kind of noise (two rain beds) correlate below 0.5, and a copy correlates
near 1. When either clip is shorter than 3 s, the stretches are as long as the shorter clip,
down to 1 s. Clips under 1 s are not checked.
"""

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

RATE_HZ = 48000
FRAME = 4800
HOP = 2400
PHASES = (0, HOP // 4, HOP // 2, 3 * HOP // 4)
BANDS = 16
WINDOW_FRAMES = 60      # 3 s
MIN_WINDOW_FRAMES = 20  # 1 s
TEMPLATES_PER_CLIP = 4
COPY_THRESHOLD = 0.9
# Stretches whose values vary by less than 0.1 dB RMS (digital silence, a constant tone)
# carry no pattern to match.
MIN_RMS_DB = 0.1


def _band_matrix():
    freqs = np.fft.rfftfreq(FRAME, 1 / RATE_HZ)
    edges = np.geomspace(100.0, 5000.0, BANDS + 1)
    return np.stack([(freqs >= lo) & (freqs < hi) for lo, hi in zip(edges[:-1], edges[1:])]).astype(np.float32)


_BAND_MATRIX = _band_matrix()


def band_energies(x):
    """Return the band energies in dB of a 48 kHz clip as [frames, 16]."""
    if len(x) < FRAME:
        return np.zeros((0, BANDS), dtype=np.float32)
    frames = sliding_window_view(x, FRAME)[::HOP] * np.hanning(FRAME).astype(np.float32)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return (10 * np.log10(power @ _BAND_MATRIX.T + 1e-10)).astype(np.float32)


def templates(features, length=WINDOW_FRAMES):
    """Return up to TEMPLATES_PER_CLIP stretches of `length` frames spread over the clip as
    [K, length * 16], each with its band and frame means removed and scaled to unit norm."""
    n = len(features) - length + 1
    out = []
    starts = np.unique(np.linspace(0, n - 1, TEMPLATES_PER_CLIP).astype(int)) if n >= 1 else []
    for start in starts:
        t = features[start: start + length]
        t = t - t.mean(axis=0)
        t = t - t.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(t)
        if norm >= MIN_RMS_DB * np.sqrt(t.size):
            out.append((t / norm).ravel())
    return np.array(out, dtype=np.float32).reshape(len(out), length * BANDS)


def best_match(features, patterns, length=WINDOW_FRAMES):
    """Return the highest normalised correlation of each pattern (from templates() with the
    same length) with any stretch of the clip."""
    n = len(features) - length + 1
    if n < 1 or len(patterns) == 0:
        return np.zeros(len(patterns), dtype=np.float32)
    windows = sliding_window_view(features, (length, BANDS))[:, 0]
    scores = windows.reshape(n, -1) @ patterns.T
    # Norm of each stretch after removing its band means and its frame means.
    f = features.astype(np.float64)
    band_sums = sliding_window_view(f, length, axis=0).sum(axis=2)
    squares = sliding_window_view((f ** 2).sum(axis=1), length).sum(axis=1)
    frame_means = sliding_window_view(f.mean(axis=1) ** 2, length).sum(axis=1)
    grand = band_sums.sum(axis=1) / (length * BANDS)
    residual = (squares - (band_sums ** 2).sum(axis=1) / length - BANDS * frame_means
                + length * BANDS * grand ** 2)
    norm = np.sqrt(np.maximum(residual, 0.0))
    valid = norm >= MIN_RMS_DB * np.sqrt(length * BANDS)
    if not valid.any():
        return np.zeros(len(patterns), dtype=np.float32)
    return (scores[valid] / norm[valid, None]).max(axis=0)


class _Clip:
    """A clip's band energies at every phase, and its templates by length."""

    def __init__(self, x):
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768
        self.phased = [band_energies(x[p:]) for p in PHASES]
        self.frames = len(self.phased[0])
        self._templates = {}

    def templates(self, length):
        if length not in self._templates:
            self._templates[length] = templates(self.phased[0], length)
        return self._templates[length]


def _score(a, b):
    """Return the highest correlation of a's templates with b's stretches and the other way
    round, over every phase."""
    length = min(WINDOW_FRAMES, a.frames, b.frames)
    if length < MIN_WINDOW_FRAMES:
        return 0.0
    forward = max(best_match(f, a.templates(length), length).max(initial=0.0) for f in b.phased)
    backward = max(best_match(f, b.templates(length), length).max(initial=0.0) for f in a.phased)
    return float(max(forward, backward))


def _closest_held_out(helds, x):
    """Return (held-out index, correlation) of the held-out clip that x matches best."""
    clip = _Clip(x)
    scores = [_score(clip, h) for h in helds]
    j = int(np.argmax(scores)) if scores else 0
    return j, (scores[j] if scores else 0.0)


def find_copies(candidates, held_out, pool=None):
    """Return {candidate index: (held-out index, correlation)} for every candidate clip that
    matches a held-out clip. Both arguments are lists of 48 kHz clips (float, or int16 at full
    scale). A multiprocessing pool, if given, shares the candidates out."""
    helds = [_Clip(x) for x in held_out]
    if pool is None:
        best = [_closest_held_out(helds, x) for x in candidates]
    else:
        best = pool.map(functools.partial(_closest_held_out, helds), candidates, chunksize=8)
    return {i: (j, score) for i, (j, score) in enumerate(best) if score >= COPY_THRESHOLD}
