"""PyTorch twin of the C engine: STFT, band features, causal DRSN and gain application.

docs/design.md is the specification both sides implement; the golden-vector test keeps them
to within 1e-4 of each other.
"""

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DEFAULT_BAND_CENTRES_HZ = [
    0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200, 1300, 1500, 1750, 2100,
    2450, 2850, 3350, 3900, 4550, 5300, 6150, 7100, 8250, 9600, 11100, 12900, 14900, 17300, 20000,
]
ENERGY_EPSILON = 1e-9
# Pitch search range of the pitch-correlation input: periods of 2.5 to 16 ms (400 to 62.5 Hz).
PITCH_MIN_MS = 2.5
PITCH_MAX_MS = 16.0
PITCH_EPSILON = 1e-9
PITCH_LAG_PENALTY = 0.1
# A window one lag back with less than this fraction of the frame's energy (60 dB less) cannot
# match it. Its score is 0: the correlation there is FFT rounding noise, and dividing it by the
# tiny energy would inflate it.
PITCH_MIN_ENERGY_RATIO = 1e-6
# Pitch filter: floors of the squared strength and of the band energies it divides by.
PITCH_FILTER_FLOOR = 1e-12
PITCH_FILTER_EPSILON = 1e-8
# Hops over which the C engine's estimate of the input's DC offset averages (1 s with 10 ms
# hops), and the shortest run of zero samples that counts as digital silence, which has none.
DC_HOPS = 100
DC_SILENT_RUN = 32
# Magnitudes below this are zero to the engine (DRSN_TINY).
TINY = 1e-30
# The DRSN keyword arguments of the network the model file and the C engine implement; any
# other value is an ablation variant.
FULL_NETWORK = {"shrink": True, "shared_threshold": False, "pooled_state": False}


class Config:
    def __init__(self, rate_hz=48000, window_samples=960, hop_samples=480,
                 band_centres_hz=None, channels=16, dilations=(1, 2, 4, 8),
                 kernel_time=2, kernel_freq=3, attention_hidden=16, running_mean_ms=0,
                 recurrent_hidden=0, pitch=False):
        self.rate_hz = rate_hz
        self.window_samples = window_samples
        self.hop_samples = hop_samples
        self.band_centres_hz = list(band_centres_hz or DEFAULT_BAND_CENTRES_HZ)
        self.channels = channels
        self.dilations = list(dilations)
        self.kernel_time = kernel_time
        self.kernel_freq = kernel_freq
        self.attention_hidden = attention_hidden
        # Time constant of the running mean of the log band energies that feeds the second
        # input channel (level relative to the recent past); 0 means a single input channel.
        self.running_mean_ms = running_mean_ms
        # Width of the gated recurrent unit that reads the last block's output of each frame
        # and corrects the gain logits; 0 means no recurrent layer.
        self.recurrent_hidden = recurrent_hidden
        # Whether a further input channel carries each band's pitch correlation: how well the
        # frame's spectrum in the band matches that of the frame one pitch period earlier.
        self.pitch = bool(pitch)

    @property
    def input_channels(self):
        return 1 + (self.running_mean_ms > 0) + self.pitch

    def pitch_lags(self, rate_hz=None):
        """Shortest and longest pitch period in samples at rate_hz (the model's rate by default)."""
        fs = rate_hz or self.rate_hz
        return (int(round(PITCH_MIN_MS * fs / 1000.0)), int(round(PITCH_MAX_MS * fs / 1000.0)))

    @property
    def running_mean_decay(self):
        """Per-hop decay of the running mean, computed as the C engine does."""
        hop_s = self.hop_samples / self.rate_hz
        return math.exp(-hop_s / (self.running_mean_ms / 1000.0))

    @property
    def band_count(self):
        return len(self.band_centres_hz)

    def to_dict(self):
        return dict(vars(self))


def band_weights(centres_hz, window, rate_hz):
    """Triangular band weights [bands, bins]; each bin's weights add up to 1."""
    bins = window // 2 + 1
    w = torch.zeros(len(centres_hz), bins, dtype=torch.float64)
    c = centres_hz
    for k in range(bins):
        f = k * rate_hz / window
        if f <= c[0]:
            w[0, k] = 1.0
        elif f >= c[-1]:
            w[-1, k] = 1.0
        else:
            b = max(i for i in range(len(c) - 1) if c[i] <= f)
            t = (f - c[b]) / (c[b + 1] - c[b])
            w[b, k] = 1.0 - t
            w[b + 1, k] = t
    return w.float()


def dc_offsets(x, hop):
    """Return the DC offset that the C engine subtracts from each sample of x [N, samples].

    The engine removes a running estimate of the offset before the analysis and adds it back
    to the output, so that an offset neither reaches the features nor leaves with the gains of
    the lowest band (docs/design.md, DC offset). Zeros in a run of DC_SILENT_RUN or more, or in
    a run that reaches the end of its hop, are digital silence: they keep their value and do
    not count in the estimate. The other samples of a hop lose the same estimate: the mean of
    their values in that hop and the hops before it, at most the last DC_HOPS of them, the older
    ones fading out. A hop of nothing but silence clears the estimate and the count of hops
    behind it."""
    rows = []
    for row in x.detach().double().cpu().numpy():
        rows.append(_dc_offsets_row(row, hop))
    return torch.from_numpy(np.stack(rows)).float()


def _dc_offsets_row(x, hop):
    """dc_offsets() for one signal, a float64 numpy array."""
    n = len(x)
    hops = -(-n // hop)
    x = np.concatenate([np.where(np.abs(x) < TINY, 0.0, x), np.zeros(hops * hop - n)])
    zero = x == 0.0
    silent = np.zeros(len(x), dtype=bool)
    if zero.any():
        # Start and end (exclusive) of the zero run that contains each sample, across hops.
        index = np.arange(len(x))
        edges = np.flatnonzero(np.diff(np.concatenate([[False], zero, [False]]).astype(np.int8)))
        run_start, run_end = edges[0::2], edges[1::2]
        run = np.maximum(np.searchsorted(run_start, index, side="right") - 1, 0)
        start, end = run_start[run], run_end[run]
        hop_end = (index // hop + 1) * hop
        silent = zero & ((np.minimum(end, hop_end) - start >= DC_SILENT_RUN) | (end >= hop_end))
    silent = silent.reshape(hops, hop)
    x = x.reshape(hops, hop)

    offsets = np.zeros((hops, hop))
    estimate, count = 0.0, 0
    for k in range(hops):
        sound = ~silent[k]
        if not sound.any():
            estimate, count = 0.0, 0
            continue
        count = min(count + 1, DC_HOPS)
        estimate += (x[k][sound].sum() / sound.sum() - estimate) / count
        if abs(estimate) < TINY:
            estimate = 0.0
        # The engine subtracts the estimate as a float.
        offsets[k][sound] = np.float32(estimate)
    return offsets.reshape(-1)[:n]


def sqrt_hann(window):
    n = torch.arange(window, dtype=torch.float64)
    return torch.sqrt(0.5 - 0.5 * torch.cos(2 * math.pi * n / window)).float()


class CausalConv(nn.Module):
    """Conv2d over [batch, channels, time, bands], causal in time, centred in frequency."""

    def __init__(self, cin, cout, kt, kf, dilation=1):
        super().__init__()
        self.pad_time = (kt - 1) * dilation
        self.pad_freq = (kf - 1) // 2
        self.conv = nn.Conv2d(cin, cout, (kt, kf), dilation=(dilation, 1))

    def forward(self, x):
        x = F.pad(x, (self.pad_freq, self.pad_freq, self.pad_time, 0))
        return self.conv(x)


def soft_threshold(x, tau):
    return torch.sign(x) * torch.relu(x.abs() - tau)


class ShrinkageBlock(nn.Module):
    """Residual shrinkage block with channel-wise thresholds pooled over frequency per frame."""

    def __init__(self, cfg, dilation, shrink=True, shared_threshold=False, pooled_state=False):
        super().__init__()
        c, h = cfg.channels, cfg.attention_hidden
        # Ablation: the attention also reads a running mean of the pooled |r| over past
        # frames (time constant 1 s), so its thresholds can depend on the recent past.
        self.pooled_state = pooled_state
        self.state_decay = math.exp(-cfg.hop_samples / cfg.rate_hz)
        self.conv1 = CausalConv(c, c, cfg.kernel_time, cfg.kernel_freq, dilation)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = CausalConv(c, c, 1, cfg.kernel_freq)
        self.bn2 = nn.BatchNorm2d(c)
        self.fc1 = nn.Linear(2 * c if pooled_state else c, h)
        self.bn_fc = nn.BatchNorm1d(h)
        self.fc2 = nn.Linear(h, c)
        self.shrink = shrink
        self.shared_threshold = shared_threshold

    def forward(self, x):
        a = F.relu(self.bn1(self.conv1(x)))
        r = self.bn2(self.conv2(a))
        if not self.shrink:
            return x + r
        m = r.abs().mean(dim=3)                      # [N, C, T]: pooled over bands per frame
        n, c, t = m.shape
        pooled = m
        if self.pooled_state:
            d = self.state_decay
            state, history = torch.zeros_like(m[:, :, 0]), []
            for i in range(t):
                state = d * state + (1.0 - d) * m[:, :, i]
                history.append(state)
            pooled = torch.cat([m, torch.stack(history, dim=2)], dim=1)
        z = self.fc1(pooled.permute(0, 2, 1).reshape(n * t, pooled.shape[1]))
        z = F.relu(self.bn_fc(z))
        alpha = torch.sigmoid(self.fc2(z)).reshape(n, t, c).permute(0, 2, 1)
        if self.shared_threshold:
            tau = (alpha * m).mean(dim=1, keepdim=True)
        else:
            tau = alpha * m
        return x + soft_threshold(r, tau.unsqueeze(-1))


class DRSN(nn.Module):
    def __init__(self, cfg, shrink=True, shared_threshold=False, pooled_state=False):
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.register_buffer("feature_mean", torch.zeros(cfg.band_count))
        self.register_buffer("feature_scale", torch.ones(cfg.band_count))
        self.stem = CausalConv(cfg.input_channels, c, cfg.kernel_time, cfg.kernel_freq)
        self.stem_bn = nn.BatchNorm2d(c)
        self.blocks = nn.ModuleList(
            [ShrinkageBlock(cfg, d, shrink, shared_threshold, pooled_state) for d in cfg.dilations])
        self.gain = nn.Conv2d(c, 1, 1)
        self.vad = nn.Linear(c, 1)
        nn.init.constant_(self.gain.bias, 2.0)
        r = cfg.recurrent_hidden
        if r > 0:
            self.rnn_in = nn.Linear(c * cfg.band_count, r)
            self.rnn = nn.GRU(r, r, batch_first=True)
            self.rnn_out = nn.Linear(r, cfg.band_count)
            # Zero output so that a network trained without the recurrent path starts from
            # the same gains.
            nn.init.zeros_(self.rnn_out.weight)
            nn.init.zeros_(self.rnn_out.bias)

        self.register_buffer("window", sqrt_hann(cfg.window_samples))
        self.register_buffer("weights", band_weights(cfg.band_centres_hz, cfg.window_samples, cfg.rate_hz))

    # Signal path ---------------------------------------------------------------------------

    def stft(self, x):
        """x [N, samples] -> complex [N, bins, frames], framed as the streaming engine does."""
        cfg = self.cfg
        x = F.pad(x, (cfg.window_samples - cfg.hop_samples, 0))
        return torch.stft(x, cfg.window_samples, cfg.hop_samples, window=self.window,
                          center=False, return_complex=True)

    def pitch_spectrum(self, x, spec):
        """Return the spectrum [N, bins, frames] of each frame one pitch period earlier.

        x is the waveform [N, samples] and spec its spectrum [N, bins, frames]. For every
        frame, the pitch period T is the lag from PITCH_MIN_MS to PITCH_MAX_MS whose normalised
        correlation between the frame's samples and the samples T earlier is highest."""
        cfg = self.cfg
        w, hop = cfg.window_samples, cfg.hop_samples
        lo, hi = cfg.pitch_lags()
        xp = F.pad(x, (w - hop + hi, 0))
        segments = xp.unfold(1, hi + w, hop)[:, : spec.shape[2]]          # [N, F, hi + w]
        frame = segments[..., hi:]
        size = 1 << (hi + w - 1).bit_length()
        corr = torch.fft.irfft(torch.conj(torch.fft.rfft(frame, size)) * torch.fft.rfft(segments, size),
                               size)
        # corr[..., m] is the sum over the frame of frame[n] * segments[n + m]: lag T = hi - m.
        # Energies and scores in double precision, as the C engine computes them.
        energy = F.pad(torch.cumsum(segments.double() ** 2, dim=-1), (1, 0))
        delayed_energy = energy[..., w:w + hi - lo + 1] - energy[..., : hi - lo + 1]
        frame_energy = energy[..., hi + w:] - energy[..., hi:hi + 1]
        score = corr[..., : hi - lo + 1].double() / torch.sqrt(frame_energy * delayed_energy + PITCH_EPSILON)
        score = torch.where(delayed_energy > PITCH_MIN_ENERGY_RATIO * frame_energy, score,
                            torch.zeros_like(score))
        # Multiples of the period correlate about as well as the period itself but drift more,
        # so longer lags lose up to PITCH_LAG_PENALTY, and ties go to the shortest lag.
        lag_excess = torch.arange(hi - lo, -1, -1, device=x.device, dtype=torch.float64)
        score = score - PITCH_LAG_PENALTY * lag_excess / (hi - lo)
        m = hi - lo - torch.argmax(torch.flip(score, dims=[-1]), dim=-1)           # [N, F]
        index = m.unsqueeze(-1) + torch.arange(w, device=x.device)
        delayed = torch.gather(segments, 2, index) * self.window
        return torch.fft.rfft(delayed, w).transpose(1, 2)

    def pitch_sums(self, spec, p):
        """Return each band's sums of Re(X conj P), |X|^2 and |P|^2 over its weights, [N, frames, bands]."""
        cross = torch.einsum("bk,nkt->ntb", self.weights, spec.real * p.real + spec.imag * p.imag)
        px = torch.einsum("bk,nkt->ntb", self.weights, spec.real ** 2 + spec.imag ** 2)
        pp = torch.einsum("bk,nkt->ntb", self.weights, p.real ** 2 + p.imag ** 2)
        return cross, px, pp

    def pitch_correlation(self, spec, p, sums=None):
        """Return each band's normalised correlation of the frame's spectrum and p, the spectrum
        one pitch period earlier: near 1 where the band contains harmonics, near 0 for noise.
        sums, when given, are pitch_sums(spec, p), computed once for this and the filter."""
        cross, px, pp = self.pitch_sums(spec, p) if sums is None else sums
        return cross / torch.sqrt(px * pp + PITCH_EPSILON)

    def pitch_filter(self, spec, p, gains, sums=None):
        """Add p, the spectrum one pitch period earlier, to each band of spec in proportion to
        how much more periodic the band is than its gain accounts for, then restore each band's
        energy. The harmonics add up and the noise between them does not, so the noise between
        harmonics falls. The strength follows the pitch filter of Valin's RNNoise (2018), times
        the band's gain g times 1 - g^2. Pass sums as for pitch_correlation."""
        sums = self.pitch_sums(spec, p) if sums is None else sums
        _cross, px, pp = sums
        rho = self.pitch_correlation(spec, p, sums).clamp(min=0.0)
        g2 = gains ** 2
        r2 = rho ** 2 * (1.0 - g2) / (g2 * (1.0 - rho ** 2) + 1e-3)
        r = torch.where(rho > gains, torch.ones_like(rho),
                        torch.sqrt(r2.clamp(min=PITCH_FILTER_FLOOR, max=1.0)))
        # The strength is scaled by g (1 - g^2). Where the network removes most of a band,
        # mixing would only reshuffle the residual noise from frame to frame (musical noise).
        # Where it keeps nearly all of the band, there is little noise to take out.
        alpha = r * gains * (1.0 - g2) * torch.sqrt(px / (pp + PITCH_FILTER_EPSILON))
        mixed = spec + torch.einsum("bk,ntb->nkt", self.weights, alpha) * p
        pm = torch.einsum("bk,nkt->ntb", self.weights, mixed.real ** 2 + mixed.imag ** 2)
        norm = torch.sqrt((px + PITCH_FILTER_EPSILON) / (pm + PITCH_FILTER_EPSILON))
        return mixed * torch.einsum("bk,ntb->nkt", self.weights, norm)

    def enhance(self, spec, gains, p=None, sums=None):
        """Return the output spectrum: spec times the bin gains, pitch-filtered first when p is
        given."""
        if p is not None:
            spec = self.pitch_filter(spec, p, gains, sums)
        return spec * self.bin_gains(gains)

    def features(self, spec, x=None, p=None, sums=None):
        """Complex spectrum [N, bins, frames] -> features [N, input_channels, frames, bands].

        Channel 0 is the normalised log band energy. The next, when the model has a running
        mean, is the log band energy minus its running mean over past frames, so that it shows
        how far each band is above its recent level. The last, when the model reads pitch, is
        each band's pitch correlation, which needs the waveform x [N, samples] or its pitch
        spectrum p (pitch_spectrum), and may take its pitch_sums."""
        power = spec.real ** 2 + spec.imag ** 2
        energy = torch.einsum("bk,nkt->ntb", self.weights, power)
        log_energy = torch.log(energy + ENERGY_EPSILON)
        channels = [(log_energy - self.feature_mean) * self.feature_scale]
        if self.cfg.running_mean_ms > 0:
            decay = self.cfg.running_mean_decay
            mean = self.feature_mean.expand(log_energy.shape[0], -1)
            relative = []
            for t in range(log_energy.shape[1]):
                mean = decay * mean + (1.0 - decay) * log_energy[:, t]
                relative.append((log_energy[:, t] - mean) * self.feature_scale)
            channels.append(torch.stack(relative, dim=1))
        if self.cfg.pitch:
            if p is None:
                if x is None:
                    raise ValueError("a model with the pitch input needs the waveform")
                p = self.pitch_spectrum(x, spec)
            channels.append(self.pitch_correlation(spec, p, sums))
        return torch.stack(channels, dim=1)

    def network(self, feat, trace=None):
        """feat [N, input_channels, frames, bands] -> gains [N, frames, bands], voice [N, frames]."""
        h = F.relu(self.stem_bn(self.stem(feat)))
        if trace is not None:
            trace.append(h)
        for block in self.blocks:
            h = block(h)
            if trace is not None:
                trace.append(h)
        u = F.relu(h)
        logits = self.gain(u).squeeze(1)
        if self.cfg.recurrent_hidden > 0:
            n, c, t, b = u.shape
            z = F.relu(self.rnn_in(u.permute(0, 2, 1, 3).reshape(n, t, c * b)))
            s, _ = self.rnn(z)
            if trace is not None:
                trace.append(s.permute(0, 2, 1).unsqueeze(-1))   # [N, R, T, 1]
            logits = logits + self.rnn_out(s)
        gains = torch.sigmoid(logits)
        voice = torch.sigmoid(self.vad(u.mean(dim=3).permute(0, 2, 1))).squeeze(-1)
        return gains, voice

    def bin_gains(self, gains):
        """Band gains [N, frames, bands] -> bin gains [N, bins, frames]."""
        return torch.einsum("bk,ntb->nkt", self.weights, gains)

    def forward(self, x):
        spec = self.stft(x)
        p = sums = None
        if self.cfg.pitch:
            p = self.pitch_spectrum(x, spec)
            sums = self.pitch_sums(spec, p)
        gains, voice = self.network(self.features(spec, x, p, sums))
        return spec, self.enhance(spec, gains, p, sums), gains, voice

    def macs_per_frame(self):
        cfg = self.cfg
        c, b, kt, kf, h = cfg.channels, cfg.band_count, cfg.kernel_time, cfg.kernel_freq, cfg.attention_hidden
        per_block = c * c * kt * kf * b + c * c * kf * b + 2 * c * h
        r = cfg.recurrent_hidden
        recurrent = c * b * r + 6 * r * r + r * b if r > 0 else 0
        return (cfg.input_channels * c * kt * kf * b + len(cfg.dilations) * per_block + c * b + c
                + recurrent)


def fold_bn_conv(conv, bn):
    """Return (weight, bias) of conv followed by eval-mode BatchNorm."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv.weight * scale.reshape(-1, *([1] * (conv.weight.dim() - 1)))
    b = (conv.bias - bn.running_mean) * scale + bn.bias
    return w.detach(), b.detach()


def folded_tensors(model):
    """Name -> tensor dict in the model-file layout, with every BatchNorm folded."""
    t = {"feature_mean": model.feature_mean, "feature_scale": model.feature_scale}
    t["stem.weight"], t["stem.bias"] = fold_bn_conv(model.stem.conv, model.stem_bn)
    for i, blk in enumerate(model.blocks):
        p = f"blocks.{i}."
        t[p + "conv1.weight"], t[p + "conv1.bias"] = fold_bn_conv(blk.conv1.conv, blk.bn1)
        t[p + "conv2.weight"], t[p + "conv2.bias"] = fold_bn_conv(blk.conv2.conv, blk.bn2)
        t[p + "fc1.weight"], t[p + "fc1.bias"] = fold_bn_conv(blk.fc1, blk.bn_fc)
        t[p + "fc2.weight"], t[p + "fc2.bias"] = blk.fc2.weight.detach(), blk.fc2.bias.detach()
    t["gain.weight"], t["gain.bias"] = model.gain.weight.detach(), model.gain.bias.detach()
    t["vad.weight"], t["vad.bias"] = model.vad.weight.detach(), model.vad.bias.detach()
    if model.cfg.recurrent_hidden > 0:
        t["rnn_in.weight"], t["rnn_in.bias"] = model.rnn_in.weight, model.rnn_in.bias
        # PyTorch's GRU gate order: reset, update, new.
        t["rnn.weight_ih"], t["rnn.weight_hh"] = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0
        t["rnn.bias_ih"], t["rnn.bias_hh"] = model.rnn.bias_ih_l0, model.rnn.bias_hh_l0
        t["rnn_out.weight"], t["rnn_out.bias"] = model.rnn_out.weight, model.rnn_out.bias
    return {k: v.detach().float().contiguous() for k, v in t.items()}
