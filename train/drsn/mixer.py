"""On-the-fly mixing of speech and noise into training examples.

Every example is (noisy, clean, loss_cutoff_hz, voiced): the clean target is the speech as it
reaches the microphone (filtered and possibly reverberant), and loss_cutoff_hz is the highest
frequency at which the target is trustworthy. Above the measured bandwidth of band-limited
speech the target is unknown, so the loss ignores those bins there instead of teaching the
network to remove high frequencies from speech.
"""

import json
import os

import numpy as np
import scipy.signal

RATE_HZ = 48000


def pick_weights(lengths, scales):
    """Return the unnormalised pick weight of clips with these lengths in samples and
    pick_weight values: the square root of the length times the pick_weight."""
    return np.sqrt(np.asarray(lengths, dtype=np.float64)) * np.asarray(scales, dtype=np.float64)


class Bank:
    """Clips of one split and kind, memory-mapped from the corpus."""

    def __init__(self, corpus_dir, name):
        self.audio = np.load(os.path.join(corpus_dir, f"{name}.npy"), mmap_mode="r")
        with open(os.path.join(corpus_dir, f"{name}.json")) as f:
            self.set_index(json.load(f))

    def set_index(self, index):
        """Use these clips of the bank: each is picked with a weight of the square root of its
        length, times its pick_weight where the corpus gives one (see prepare_data.py)."""
        self.index = index
        lengths = np.array([c["length"] for c in self.index], dtype=np.float64)
        weights = pick_weights(lengths, [c.get("pick_weight", 1.0) for c in self.index])
        self.weights = weights / weights.sum()
        self.seconds = lengths.sum() / RATE_HZ

    def __len__(self):
        return len(self.index)

    def clip(self, i):
        c = self.index[i]
        return np.asarray(self.audio[c["offset"]: c["offset"] + c["length"]], dtype=np.float32) / 32768.0

    def pick(self, rng):
        return int(rng.choice(len(self.index), p=self.weights))


def random_eq(x, rng):
    """Apply one or two random peaking or shelving biquads of +-8 dB."""
    for _ in range(rng.integers(1, 3)):
        f0 = float(np.exp(rng.uniform(np.log(80), np.log(12000))))
        gain_db = rng.uniform(-8, 8)
        q = rng.uniform(0.5, 2.0)
        a = 10 ** (gain_db / 40)
        w0 = 2 * np.pi * f0 / RATE_HZ
        alpha = np.sin(w0) / (2 * q)
        b = np.array([1 + alpha * a, -2 * np.cos(w0), 1 - alpha * a])
        den = np.array([1 + alpha / a, -2 * np.cos(w0), 1 - alpha / a])
        x = scipy.signal.lfilter(b / den[0], den / den[0], x)
    return x.astype(np.float32)


def synthetic_rir(rng):
    """Exponentially decaying noise with a direct path: RT60 of 0.15 to 0.8 s."""
    rt60 = rng.uniform(0.15, 0.8)
    n = int(min(rt60, 0.6) * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail = scipy.signal.lfilter([1.0], [1.0, -rng.uniform(0.0, 0.7)], tail)
    tail[: int(0.002 * RATE_HZ)] = 0
    rir = tail * rng.uniform(0.1, 0.5) / (np.sqrt(np.sum(tail ** 2)) + 1e-9)
    rir[0] = 1.0
    return rir.astype(np.float32)


def lowpass(x, cutoff_hz):
    sos = scipy.signal.butter(8, cutoff_hz, fs=RATE_HZ, output="sos")
    return scipy.signal.sosfilt(sos, x).astype(np.float32)


def coloured_noise(n, rng):
    exponent = rng.choice([0.0, 1.0, 2.0])           # white, pink, brown
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE_HZ)
    f[0] = f[1]
    x = np.fft.irfft(spec / f ** (exponent / 2), n)
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def hum(n, rng):
    f0 = rng.choice([50.0, 60.0]) * rng.uniform(0.98, 1.02)
    t = np.arange(n) / RATE_HZ
    x = sum(rng.uniform(0.1, 1.0) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6.3))
            for k in range(1, 12))
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def active_rms(x):
    frames = x[: len(x) // 480 * 480].reshape(-1, 480)
    e = np.mean(frames ** 2, axis=1)
    if e.max() <= 0:
        return 0.0
    active = e[e > e.max() * 1e-4]
    return float(np.sqrt(np.mean(active)))


def stop_envelope(n, stop, fade=960):
    """Return n gains that are 1 up to stop and fall to 0 over fade samples after it."""
    envelope = np.zeros(n, dtype=np.float32)
    envelope[:stop] = 1.0
    end = min(n, stop + fade)
    envelope[stop:end] = np.linspace(1.0, 0.0, end - stop, endpoint=False)
    return envelope


class Mixer:
    def __init__(self, corpus_dir, split, seconds=2.0, snr_range=(-5.0, 25.0), clean_share=0.05,
                 floor_share=0.0, noise_stop_share=0.0, noise_lead_share=0.0,
                 silence_lead_share=0.0, speech_start_share=0.0, noise_start_share=0.0):
        self.speech = Bank(corpus_dir, f"{split}_speech")
        self.noise = Bank(corpus_dir, f"{split}_noise")
        keys = os.path.join(corpus_dir, "typing_keys.npy")
        self.keys = np.load(keys) if os.path.exists(keys) else None
        self.length = int(seconds * RATE_HZ)
        self.snr_range = snr_range
        self.clean_share = clean_share      # share of examples that are clean speech only
        # Share of examples that get a white noise floor at -100 to -70 dBFS in both the input
        # and the target, as a real recording has, so that the network learns to leave it.
        self.floor_share = floor_share
        # Share of noisy examples whose noise stops within the crop, so that the network learns
        # to let speech through soon after loud noise ends.
        self.noise_stop_share = noise_stop_share
        # Share of those whose speech starts only after the noise has stopped, as when a talker
        # starts after a noisy stretch without speech.
        self.noise_lead_share = noise_lead_share
        # Share of examples that start with digital silence in input and target, as a stream
        # does before its source is live. Otherwise only clean-only crops start silent, and
        # the network learns to pass much of the noise after a silent start.
        self.silence_lead_share = silence_lead_share
        # Share of examples whose speech sounds from the first sample, cut from inside a clip.
        # Without them speech always starts after silence and noise at once, so the networks
        # learned to cut the first word of clean speech, by up to 28 dB.
        self.speech_start_share = speech_start_share
        # Share of the noisy examples without a noise stop whose noise starts late, after clean
        # speech. Without them a network that has heard only clean speech or silence can keep
        # passing the noise that comes after.
        self.noise_start_share = noise_start_share

    def speech_crop(self, rng, inside=False):
        """Concatenate clips with short gaps until the crop is full; return it and its bandwidth.
        With inside, the crop starts within the sound of its first clip instead of after a gap."""
        n = self.length
        out = np.zeros(n, dtype=np.float32)
        pos = 0 if inside else int(rng.uniform(0, 0.3) * RATE_HZ)
        bandwidth = RATE_HZ / 2
        while pos < n:
            i = self.speech.pick(rng)
            x = self.speech.clip(i)
            if inside and pos == 0:
                # Start at a random sample within 40 dB of the clip's peak, among the first half
                # of such samples, so that speech follows.
                loud = np.flatnonzero(np.abs(x) > 0.01 * np.max(np.abs(x)))
                if len(loud):
                    x = x[int(loud[rng.integers(0, max(1, len(loud) // 2))]):]
                if len(x) > n:
                    x = x[:n]
            elif len(x) > n and pos == 0:
                start = int(rng.integers(0, len(x) - n))
                x = x[start: start + n]
            take = min(len(x), n - pos)
            out[pos: pos + take] = x[:take]
            bandwidth = min(bandwidth, self.speech.index[i]["bandwidth_hz"])
            pos += take + int(rng.uniform(0.05, 0.4) * RATE_HZ)
        return out, bandwidth

    def noise_crop(self, rng):
        n = self.length
        r = rng.random()
        if r < 0.1:
            return coloured_noise(n, rng)
        if r < 0.13:
            return hum(n, rng) + 0.1 * coloured_noise(n, rng)
        if r < 0.21 and self.keys is not None:
            return self.typing(n, rng)
        if r < 0.29:
            return self.babble(n, rng)
        x = self.noise.clip(self.noise.pick(rng))
        if len(x) < n:
            x = np.tile(x, n // len(x) + 1)
        start = int(rng.integers(0, len(x) - n + 1))
        x = x[start: start + n].copy()
        if rng.random() < 0.3:
            y = self.noise.clip(self.noise.pick(rng))
            y = np.tile(y, n // len(y) + 1)[:n]
            x = x + y * rng.uniform(0.2, 1.0)
        return x

    def typing(self, n, rng):
        out = np.zeros(n + self.keys.shape[1], dtype=np.float32)
        rate = rng.uniform(3, 9)                       # keystrokes per second
        t = 0.0
        while t < n / RATE_HZ:
            k = self.keys[rng.integers(len(self.keys))]
            pos = int(t * RATE_HZ)
            out[pos: pos + len(k)] += k * rng.uniform(0.3, 1.0)
            t += rng.exponential(1 / rate)
        return out[:n]

    def babble(self, n, rng):
        out = np.zeros(n, dtype=np.float32)
        for _ in range(rng.integers(3, 8)):
            x, _bw = self.speech_crop(rng)
            out += np.roll(x, int(rng.integers(0, n)))
        return out

    def example(self, rng):
        n = self.length
        kind = rng.random()
        # No draw at all without starts inside speech, so that runs without them keep their batches.
        inside = self.speech_start_share > 0.0 and rng.random() < self.speech_start_share
        speech, bandwidth = self.speech_crop(rng, inside)
        if rng.random() < 0.5:
            speech = random_eq(speech, rng)
        if rng.random() < 0.25:
            speech = scipy.signal.fftconvolve(speech, synthetic_rir(rng))[:n].astype(np.float32)

        noise = self.noise_crop(rng)
        if rng.random() < 0.5:
            noise = random_eq(noise, rng)

        s_rms, n_rms = active_rms(speech), float(np.sqrt(np.mean(noise ** 2)))
        clean_only = kind < self.clean_share
        noise_only = self.clean_share <= kind < self.clean_share + 0.05
        if clean_only:
            noise = noise * 0.0
        elif noise_only:
            speech = speech * 0.0
            noise = noise / (n_rms + 1e-9) * 0.05
        else:
            snr_db = rng.uniform(*self.snr_range)
            noise = noise * (s_rms / (n_rms + 1e-9) * 10 ** (-snr_db / 20))
            # No draw at all without stops, so that runs without them keep their batches.
            if self.noise_stop_share > 0.0 and rng.random() < self.noise_stop_share:
                stop = int(rng.uniform(0.2, 0.8) * n)
                noise = noise * stop_envelope(n, stop)
                # Again no draw without leads, so that runs with stops alone keep their batches.
                if self.noise_lead_share > 0.0 and rng.random() < self.noise_lead_share:
                    start = min(n, stop + int(rng.uniform(0.0, 0.5) * RATE_HZ))
                    speech = speech * (1.0 - stop_envelope(n, start, fade=480))
            # No draw at all without late starts, so that runs without them keep their batches.
            elif self.noise_start_share > 0.0 and rng.random() < self.noise_start_share:
                noise = noise * (1.0 - stop_envelope(n, int(rng.uniform(0.1, 0.7) * n)))

        cutoff = RATE_HZ / 2
        if rng.random() < 0.1:                           # content of an 8 to 22.05 kHz host rate
            cutoff = float(rng.choice([3800.0, 5400.0, 7600.0, 10800.0]))
            speech, noise = lowpass(speech, cutoff), lowpass(noise, cutoff)
        loss_cutoff = cutoff if noise_only else min(cutoff, bandwidth)

        level = 10 ** (rng.uniform(-40, -12) / 20)
        mix = speech + noise
        ref = max(active_rms(mix), 1e-6)
        gain = level / ref
        peak = np.max(np.abs(mix)) * gain
        if peak > 0.99:
            gain *= 0.99 / peak
        voiced = not noise_only
        mix, speech = mix * gain, speech * gain
        # No draw at all without floors, so that runs without them keep their batches.
        if self.floor_share > 0.0 and rng.random() < self.floor_share:
            floor = rng.standard_normal(n) * 10 ** (rng.uniform(-100, -70) / 20)
            mix, speech = mix + floor, speech + floor
        # No draw at all without silent starts, so that runs without them keep their batches.
        if self.silence_lead_share > 0.0 and rng.random() < self.silence_lead_share:
            start = int(rng.uniform(0.05, 0.5) * n)
            mix[:start] = 0.0
            speech[:start] = 0.0
        return mix.astype(np.float32), speech.astype(np.float32), loss_cutoff, voiced

    def batch(self, rng, size):
        items = [self.example(rng) for _ in range(size)]
        noisy = np.stack([i[0] for i in items])
        clean = np.stack([i[1] for i in items])
        cutoff = np.array([i[2] for i in items], dtype=np.float32)
        return noisy, clean, cutoff
