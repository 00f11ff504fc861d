"""Writers for the model file and the golden vectors (layouts in docs/design.md)."""

import struct
import zlib

import numpy as np
import torch

from .model import dc_offsets

MODEL_MAGIC = b"DRSNMODL"
MODEL_VERSION = 3     # versions 1 and 2, without the later header fields, are still read
GOLDEN_MAGIC = b"DRSNGOLD"
GOLDEN_VERSION = 2


def model_bytes(cfg, tensors):
    out = bytearray(MODEL_MAGIC)
    # Each file gets the oldest version that can describe it, so that older engines read it.
    version = 1
    if cfg.recurrent_hidden:
        version = 2
    if getattr(cfg, "pitch", False):
        version = 3
    out += struct.pack("<11I", version, cfg.rate_hz, cfg.window_samples, cfg.hop_samples,
                       cfg.band_count, cfg.channels, len(cfg.dilations), cfg.kernel_time,
                       cfg.kernel_freq, cfg.attention_hidden, cfg.running_mean_ms)
    if version >= 2:
        out += struct.pack("<I", cfg.recurrent_hidden)
    if version >= 3:
        out += struct.pack("<I", int(cfg.pitch))
    out += struct.pack(f"<{len(cfg.dilations)}I", *cfg.dilations)
    out += struct.pack(f"<{cfg.band_count}f", *cfg.band_centres_hz)
    out += struct.pack("<I", len(tensors))
    for name, value in tensors.items():
        arr = np.ascontiguousarray(value.detach().cpu().numpy(), dtype="<f4")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"tensor {name} has non-finite values")
        out += struct.pack("<I", len(name)) + name.encode("ascii")
        out += struct.pack("<I", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        out += arr.tobytes()
    out += struct.pack("<I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)
    return bytes(out)


def write_model(path, cfg, tensors):
    data = model_bytes(cfg, tensors)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


@torch.no_grad()
def write_golden(path, model, signal):
    """Run the model on a mono signal and write every frame's intermediate values."""
    cfg = model.cfg
    model.eval()
    x = torch.as_tensor(signal, dtype=torch.float32).reshape(1, -1)
    # The engine analyses the input without its running DC offset estimate.
    xd = x - dc_offsets(x, cfg.hop_samples)
    feat = model.features(model.stft(xd), xd)
    trace = []
    gains, voice = model.network(feat, trace)
    frames = feat.shape[2]
    out = bytearray(GOLDEN_MAGIC)
    out += struct.pack("<11I", GOLDEN_VERSION, cfg.rate_hz, cfg.window_samples, cfg.hop_samples,
                       cfg.band_count, cfg.channels, len(cfg.dilations), cfg.input_channels, frames,
                       x.shape[1], cfg.recurrent_hidden)
    out += x.numpy().astype("<f4").tobytes()
    per_frame = [feat[0].permute(1, 0, 2).reshape(frames, -1)]  # [T, input_channels * B]
    for h in trace:          # [1, C, T, B] -> [T, C*B]; the recurrent state [1, R, T, 1] -> [T, R]
        per_frame.append(h[0].permute(1, 0, 2).reshape(frames, -1))
    per_frame += [gains[0], voice[0].reshape(frames, 1)]
    table = torch.cat(per_frame, dim=1).numpy().astype("<f4")
    out += table.tobytes()
    with open(path, "wb") as f:
        f.write(out)
    return frames
