#!/usr/bin/python3
"""Train the causal DRSN denoiser on mixtures made on the fly, with checkpoints and resume.

Usage: /usr/bin/python3 train/train.py --run NAME [--steps N] [--batch B] [--seconds S]

Checkpoints go to DATA/runs/NAME/ (DATA defaults to ~/.cache/drsn-denoise): last.pt every
--checkpoint-every steps and best.pt whenever the validation loss improves. Running the same
command again resumes from last.pt, including the random state of the mixer.
"""

import argparse
import json
import math
import os
import pickle
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tools"))
import metrics  # noqa: E402
from drsn.mixer import RATE_HZ, Mixer  # noqa: E402
from drsn.model import DRSN, Config, dc_offsets  # noqa: E402

COMPRESSION = 0.3
OVER_SUPPRESSION_WEIGHT = 3.0   # errors where the output falls below the clean target
LOW_BAND_HZ = 5000.0            # upper edge of the bins that --low-band-weight weights
COMPLEX_WEIGHT = 0.3
VOICE_WEIGHT = 0.05
# The intelligibility term takes its band layout, segment length and dynamic range from ESTOI.
ESTOI_SEGMENT_S = metrics.SEGMENT_FRAMES * metrics.HOP_SAMPLES / metrics.STOI_RATE_HZ   # 384 ms
ESTOI_DYNAMIC_RANGE = 10.0 ** (-metrics.DYNAMIC_RANGE_DB / 10.0)   # energy ratio of 40 dB


def default_data_dir():
    return os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise"))


def bin_frequencies(model):
    """Centre frequency in Hz of every bin of the model's STFT."""
    cfg = model.cfg
    return torch.arange(cfg.window_samples // 2 + 1) * cfg.rate_hz / cfg.window_samples


def bin_mask(model, cutoff_hz):
    """[N, bins, 1] mask that keeps the bins at or below each example's loss cutoff."""
    freqs = bin_frequencies(model)
    return (freqs[None, :] <= cutoff_hz[:, None]).float().unsqueeze(-1)


def overlap_add(model, spec):
    """Differentiable inverse of model.stft: [N, bins, frames] -> [N, samples]."""
    cfg = model.cfg
    frames = torch.fft.irfft(spec.transpose(1, 2), n=cfg.window_samples) * model.window
    count = frames.shape[1]
    length = (count - 1) * cfg.hop_samples + cfg.window_samples
    out = F.fold(frames.transpose(1, 2), output_size=(1, length),
                 kernel_size=(1, cfg.window_samples), stride=(1, cfg.hop_samples))
    return out.reshape(spec.shape[0], length)


def si_sdr_db(reference, estimate):
    """SI-SDR in dB per example, for [N, samples] tensors."""
    scale = (estimate * reference).sum(-1, keepdim=True) / ((reference ** 2).sum(-1, keepdim=True) + 1e-9)
    target = scale * reference
    noise = estimate - target
    return 10 * torch.log10((target ** 2).sum(-1) + 1e-9) - 10 * torch.log10((noise ** 2).sum(-1) + 1e-9)


def third_octave_weights(model):
    """[bands, bins] 0/1 matrix grouping the model's STFT bins into ESTOI's bands."""
    freqs = bin_frequencies(model)
    band = torch.arange(metrics.BAND_COUNT, dtype=torch.float64)
    lower = metrics.LOWEST_CENTRE_HZ * 2.0 ** ((2 * band - 1) / 6.0)
    upper = metrics.LOWEST_CENTRE_HZ * 2.0 ** ((2 * band + 1) / 6.0)
    return ((freqs[None, :] >= lower[:, None]) & (freqs[None, :] < upper[:, None])).float()


def _centre_and_normalise(x, dim):
    x = x - x.mean(dim=dim, keepdim=True)
    return x / (x.norm(dim=dim, keepdim=True) + 1e-8)


def estoi_like(model, target, out):
    """Differentiable ESTOI of complex spectra [N, bins, frames], one value per example.

    It follows ESTOI's steps on the model's own STFT instead of a 10 kHz one. The band
    envelopes are one-third-octave wide and cut into segments of 384 ms sliding by one frame.
    Each segment is normalised over time and then over bands, and the term is the mean
    correlation of the two. Segments whose clean energy lies more than 40 dB below the crop's
    loudest segment are left out, as ESTOI leaves out silent frames. Examples without any
    remaining segment score 0."""
    bands = third_octave_weights(model)
    length = max(2, round(ESTOI_SEGMENT_S * model.cfg.rate_hz / model.cfg.hop_samples))
    clean_env = torch.sqrt(torch.einsum("bk,nkt->nbt", bands, target.abs() ** 2) + 1e-10)
    out_env = torch.sqrt(torch.einsum("bk,nkt->nbt", bands, out.abs() ** 2) + 1e-10)
    if clean_env.shape[-1] < length:
        return torch.zeros(target.shape[0])
    clean_seg = clean_env.unfold(2, length, 1)          # [N, bands, segments, length]
    out_seg = out_env.unfold(2, length, 1)
    energy = (clean_seg ** 2).sum(dim=(1, 3))           # [N, segments]
    valid = (energy > ESTOI_DYNAMIC_RANGE * energy.amax(dim=1, keepdim=True)).float()
    valid = valid * (energy.amax(dim=1, keepdim=True) > 1e-6).float()
    c = _centre_and_normalise(_centre_and_normalise(clean_seg, 3), 1)
    o = _centre_and_normalise(_centre_and_normalise(out_seg, 3), 1)
    per_segment = (c * o).sum(dim=(1, 3)) / length
    return (per_segment * valid).sum(dim=1) / (valid.sum(dim=1) + 1e-9)


def without_dc(noisy, clean, hop):
    """Return noisy and clean (numpy, [N, samples]) less the DC offset estimate that the C
    engine takes from noisy before its analysis and gives back to its output."""
    offsets = dc_offsets(torch.from_numpy(noisy), hop).numpy()
    return noisy - offsets, clean - offsets


def loss_terms(model, noisy, clean, cutoff_hz, si_sdr_weight=0.01, low_band_weight=1.0,
               estoi_weight=0.0, magnitude_weight=1.0, complex_weight=COMPLEX_WEIGHT,
               over_suppression_weight=OVER_SUPPRESSION_WEIGHT):
    spec, out, gains, voice = model(noisy)
    target = model.stft(clean)
    mask = bin_mask(model, cutoff_hz)
    spectral_mask = mask
    if low_band_weight != 1.0:
        # Intelligibility (ESTOI) is measured below about 5 kHz, where a tenth of the bins lie.
        freqs = bin_frequencies(model)
        band_weight = 1.0 + (low_band_weight - 1.0) * (freqs <= LOW_BAND_HZ).float()
        spectral_mask = mask * band_weight[None, :, None]

    out_mag = (out.abs() + 1e-8) ** COMPRESSION
    tgt_mag = (target.abs() + 1e-8) ** COMPRESSION
    diff = out_mag - tgt_mag
    weight = 1.0 + (over_suppression_weight - 1.0) * (diff < 0).float()
    norm = spectral_mask.sum() * out.shape[-1] + 1e-9
    magnitude = (spectral_mask * weight * diff ** 2).sum() / norm

    # Compressed complex spectra, written without angle() because its gradient at 0 is NaN.
    out_c = out * (out_mag / (out.abs() + 1e-8))
    tgt_c = target * (tgt_mag / (target.abs() + 1e-8))
    complex_term = (spectral_mask * (out_c - tgt_c).abs() ** 2).sum() / norm

    # Frames whose clean energy is within 40 dB of the crop's loudest frame count as speech.
    frame_energy = (target.abs() ** 2).sum(dim=1)
    peak = frame_energy.max(dim=1, keepdim=True).values
    voice_target = ((frame_energy > peak * 1e-4) & (peak > 1e-3)).float()
    voice_term = F.binary_cross_entropy(voice.clamp(1e-6, 1 - 1e-6), voice_target)

    # SI-SDR of the output against the target, both limited to the trusted band, over the
    # examples that contain speech.
    speech = (target.abs().flatten(1).amax(dim=1) > 0).float()
    sdr = si_sdr_db(overlap_add(model, target * mask), overlap_add(model, out * mask))
    sdr_term = -(sdr.clamp(max=50) * speech).sum() / (speech.sum() + 1e-9)

    total = (magnitude_weight * magnitude + complex_weight * complex_term + VOICE_WEIGHT * voice_term
             + si_sdr_weight * sdr_term)
    parts = {"magnitude": magnitude.item(), "complex": complex_term.item(),
             "voice": voice_term.item(), "si_sdr": -sdr_term.item()}
    if estoi_weight > 0:
        intelligibility = (estoi_like(model, target * mask, out * mask) * speech).sum() / (speech.sum() + 1e-9)
        total = total - estoi_weight * intelligibility
        parts["estoi"] = intelligibility.item()
    return total, parts


@torch.no_grad()
def feature_statistics(model, mixer, rng, batches=20, batch=16):
    feats = []
    for _ in range(batches):
        noisy, _clean, _cut = mixer.batch(rng, batch)
        spec = model.stft(torch.from_numpy(noisy))
        power = spec.real ** 2 + spec.imag ** 2
        energy = torch.einsum("bk,nkt->ntb", model.weights, power)
        feats.append(torch.log(energy + 1e-9).reshape(-1, model.cfg.band_count))
    f = torch.cat(feats)
    return f.mean(dim=0), 1.0 / (f.std(dim=0) + 1e-3)


@torch.no_grad()
def validate(model, val_batches, si_sdr_weight, low_band_weight=1.0, estoi_weight=0.0,
             magnitude_weight=1.0, complex_weight=COMPLEX_WEIGHT,
             over_suppression_weight=OVER_SUPPRESSION_WEIGHT):
    model.eval()
    total, count = 0.0, 0
    for noisy, clean, cutoff in val_batches:
        loss, _ = loss_terms(model, torch.from_numpy(noisy), torch.from_numpy(clean), torch.from_numpy(cutoff),
                             si_sdr_weight, low_band_weight, estoi_weight, magnitude_weight,
                             complex_weight, over_suppression_weight)
        total += loss.item()
        count += 1
    model.train()
    return total / count


def widen_inputs(model, state):
    """Give a start checkpoint's stem the new model's input channels, with zero weights for
    the added ones, so that the new model starts with the old one's outputs."""
    stem = model.stem.conv.weight
    old = state.get("stem.conv.weight")
    if old is not None and old.shape[1] < stem.shape[1] and old.shape[2:] == stem.shape[2:]:
        wide = torch.zeros_like(stem)
        wide[:, : old.shape[1]] = old
        state = dict(state, **{"stem.conv.weight": wide})
    return state


def remap_bands(model, checkpoint):
    """Return a start checkpoint's state fitted to the model's band layout, and whether the
    layout changed. Each new band takes the per-band weights of the nearest old band.

    New bands that share one old band divide its recurrent input weights, so the recurrent
    unit's input stays near the old one. The caller computes the new feature statistics."""
    state = checkpoint["model"]
    old_centres = checkpoint.get("config", {}).get("band_centres_hz")
    new_centres = model.cfg.band_centres_hz
    if old_centres is None or list(old_centres) == list(new_centres):
        return state, False
    nearest = torch.tensor([min(range(len(old_centres)), key=lambda j: abs(old_centres[j] - f))
                            for f in new_centres])
    share = torch.bincount(nearest, minlength=len(old_centres)).float()[nearest]
    state = dict(state)
    for name in ("weights", "feature_mean", "feature_scale"):
        state[name] = getattr(model, name)
    for name in ("rnn_out.weight", "rnn_out.bias"):
        if name in state:
            state[name] = state[name][nearest]
    if "rnn_in.weight" in state:
        weight = state["rnn_in.weight"]
        channels = weight.shape[1] // len(old_centres)
        weight = weight.reshape(weight.shape[0], channels, len(old_centres))[:, :, nearest] / share
        state["rnn_in.weight"] = weight.reshape(weight.shape[0], channels * len(new_centres))
    print(f"band layout changed: {len(old_centres)} bands to {len(new_centres)}, each new band "
          "from the nearest old one", flush=True)
    return state, True


def learning_rate(step, args):
    warmup = 200
    if step < warmup:
        return args.lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, args.steps - warmup))
    return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def save(path, model, optimizer, step, best, rng, args, history):
    tmp = path + ".tmp"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                "best": best, "rng": pickle.dumps(rng), "config": model.cfg.to_dict(),
                "variant": {"shrink": args.shrink, "shared_threshold": args.shared_threshold,
                            "pooled_state": args.pooled_state},
                "args": vars(args), "history": history}, tmp)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="run name; checkpoints go to DATA/runs/RUN")
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--corpus", default=None, help="corpus directory (default DATA/corpus)")
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each training crop")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--window", type=int, default=960, help="analysis window in samples at 48 kHz")
    ap.add_argument("--hop", type=int, default=480, help="hop in samples at 48 kHz")
    ap.add_argument("--dilations", default="1,2,4,8",
                    help="time dilation of each residual shrinkage block, comma-separated")
    ap.add_argument("--band-centres", default=None, metavar="HZ,HZ,...",
                    help="band centres in Hz at 48 kHz, rising from 0 (default: the 32 of the shipped models)")
    ap.add_argument("--running-mean-ms", type=int, default=1000,
                    help="time constant of the running-mean input channel in ms; 0 disables it")
    ap.add_argument("--recurrent", type=int, default=0,
                    help="width of the recurrent layer after the blocks; 0 for none")
    ap.add_argument("--pitch", action="store_true",
                    help="add each band's pitch correlation as an input channel")
    ap.add_argument("--init-from", default=None,
                    help="start a new run from this checkpoint's weights (layers it lacks start fresh)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint-every", type=int, default=100)
    ap.add_argument("--validate-every", type=int, default=500)
    ap.add_argument("--val-batches", type=int, default=8)
    ap.add_argument("--si-sdr-weight", type=float, default=0.01,
                    help="weight of the band-limited SI-SDR loss term, per dB")
    ap.add_argument("--low-band-weight", type=float, default=1.0,
                    help="weight of the bins up to 5 kHz in the spectral loss terms")
    ap.add_argument("--estoi-weight", type=float, default=0.0,
                    help="weight of the intelligibility term (an ESTOI computed on the model's STFT)")
    ap.add_argument("--magnitude-weight", type=float, default=1.0,
                    help="weight of the compressed-magnitude loss term (0 for the loss ablation)")
    ap.add_argument("--complex-weight", type=float, default=COMPLEX_WEIGHT,
                    help="weight of the compressed complex-spectrum loss term (0 for the loss ablation)")
    ap.add_argument("--over-suppression-weight", type=float, default=OVER_SUPPRESSION_WEIGHT,
                    help="weight of the compressed-magnitude errors where the output falls below "
                         "the clean target, against 1 where it lies above")
    ap.add_argument("--no-shrink", dest="shrink", action="store_false", help="ablation: plain residual blocks")
    ap.add_argument("--shared-threshold", action="store_true", help="ablation: one threshold for all channels")
    ap.add_argument("--pooled-state", action="store_true",
                    help="ablation: threshold attention also reads a running mean of past frames")
    ap.add_argument("--snr-range", default="-5,25", metavar="LOW,HIGH",
                    help="SNR range in dB of the training mixtures, drawn uniformly. Validation keeps "
                         "-5 to 25 dB so that runs compare. Write it as --snr-range=-5,15 "
                         "(default -5,25)")
    ap.add_argument("--clean-share", type=float, default=0.05,
                    help="share of training examples that are clean speech with no noise")
    ap.add_argument("--floor-share", type=float, default=0.0,
                    help="share of training examples with a white noise floor at -100 to -70 dBFS "
                         "in both input and target, to keep clean speech that has one (default 0)")
    ap.add_argument("--noise-stop-share", type=float, default=0.0,
                    help="share of noisy training examples whose noise stops within the crop, "
                         "to let speech through soon after noise ends (default 0)")
    ap.add_argument("--noise-lead-share", type=float, default=0.0,
                    help="share of the examples with stopping noise whose speech starts only "
                         "after the noise, to let onsets through after noise alone (default 0)")
    ap.add_argument("--silence-lead-share", type=float, default=0.0,
                    help="share of training examples that start with digital silence in input "
                         "and target, for streams that start silent (default 0)")
    ap.add_argument("--speech-start-share", type=float, default=0.0,
                    help="share of training examples whose speech sounds from the first sample, "
                         "for recordings that start on a word (default 0)")
    ap.add_argument("--noise-start-share", type=float, default=0.0,
                    help="share of noisy training examples whose noise starts 10 to 70 %% into "
                         "the crop, after clean speech, when it does not stop (default 0)")
    ap.add_argument("--dc-offsets", action="store_true",
                    help="train on the input less the C engine's running DC offset estimate, as "
                         "the engine runs the network (docs/design.md, DC offset)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    corpus = args.corpus or os.path.join(args.data, "corpus")
    run_dir = os.path.join(args.data, "runs", args.run)
    last_path = os.path.join(run_dir, "last.pt")

    band_centres = None
    if args.band_centres:
        try:
            band_centres = [float(v) for v in args.band_centres.split(",")]
        except ValueError:
            band_centres = []
        if (not 2 <= len(band_centres) <= 256 or band_centres[0] != 0.0 or band_centres[-1] > 24000.0
                or any(b <= a for a, b in zip(band_centres, band_centres[1:]))):
            sys.exit(f"train.py: invalid --band-centres {args.band_centres}: expected 2 to 256 "
                     "rising values in Hz, the first 0 and the last at most 24000")
    cfg = Config(window_samples=args.window, hop_samples=args.hop, channels=args.channels,
                 band_centres_hz=band_centres,
                 attention_hidden=args.channels, running_mean_ms=args.running_mean_ms,
                 recurrent_hidden=args.recurrent, pitch=args.pitch,
                 dilations=[int(d) for d in args.dilations.split(",") if d])
    model = DRSN(cfg, shrink=args.shrink, shared_threshold=args.shared_threshold,
                 pooled_state=args.pooled_state)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    if not 0.0 <= args.clean_share <= 0.95:
        sys.exit(f"train.py: invalid --clean-share {args.clean_share}: use a value from 0 to 0.95")
    for option in ("floor_share", "noise_stop_share", "noise_lead_share", "silence_lead_share",
                   "speech_start_share", "noise_start_share"):
        value = getattr(args, option)
        if not 0.0 <= value <= 1.0:
            sys.exit(f"train.py: invalid --{option.replace('_', '-')} {value}: use a value from 0 to 1")
    if not 0.0 < args.over_suppression_weight < 1000.0:
        sys.exit(f"train.py: invalid --over-suppression-weight {args.over_suppression_weight}: "
                 "use a value above 0 and below 1000")
    try:
        snr_range = tuple(float(v) for v in args.snr_range.split(","))
    except ValueError:
        snr_range = ()
    if len(snr_range) != 2 or not snr_range[0] <= snr_range[1]:
        sys.exit(f"train.py: invalid --snr-range {args.snr_range}: expected LOW,HIGH in dB, "
                 "for example --snr-range=-5,15")
    train_mix = Mixer(corpus, "train", seconds=args.seconds, snr_range=snr_range,
                      clean_share=args.clean_share, floor_share=args.floor_share,
                      noise_stop_share=args.noise_stop_share, noise_lead_share=args.noise_lead_share,
                      silence_lead_share=args.silence_lead_share,
                      speech_start_share=args.speech_start_share,
                      noise_start_share=args.noise_start_share)
    val_mix = Mixer(corpus, "val", seconds=args.seconds)
    val_batches = [val_mix.batch(np.random.default_rng(1000 + i), args.batch) for i in range(args.val_batches)]
    if args.dc_offsets:
        val_batches = [(*without_dc(noisy, clean, cfg.hop_samples), cutoff)
                       for noisy, clean, cutoff in val_batches]
    # Only now, so that a command line or corpus that fails leaves no empty run folder.
    os.makedirs(run_dir, exist_ok=True)

    step, best, history = 0, float("inf"), []
    if os.path.exists(last_path):
        ck = torch.load(last_path, map_location="cpu")
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        step, best, history = ck["step"], ck["best"], ck.get("history", [])
        rng = pickle.loads(ck["rng"])
        print(f"resumed {run_dir} at step {step}", flush=True)
    else:
        rng = np.random.default_rng(args.seed)
        new_layout = True
        if args.init_from:
            start_checkpoint = torch.load(args.init_from, map_location="cpu")
            start, new_layout = remap_bands(model, start_checkpoint)
            start = widen_inputs(model, start)
            missing, unexpected = model.load_state_dict(start, strict=False)
            if unexpected:
                sys.exit(f"{args.init_from}: layers this network lacks: {', '.join(unexpected)}")
            print(f"initialised from {args.init_from}; new layers: {', '.join(missing) or 'none'}",
                  flush=True)
        if new_layout:
            mean, scale = feature_statistics(model, train_mix, rng)
            model.feature_mean.copy_(mean)
            model.feature_scale.copy_(scale)
        print(f"training {run_dir}: {sum(p.numel() for p in model.parameters())} parameters, "
              f"{model.macs_per_frame() * cfg.rate_hz / cfg.hop_samples / 1e6:.1f} M MAC/s, "
              f"speech {train_mix.speech.seconds / 3600:.2f} h, noise {train_mix.noise.seconds / 3600:.2f} h",
              flush=True)

    model.train()
    started, window_loss = time.time(), []
    while step < args.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, args)
        noisy, clean, cutoff = train_mix.batch(rng, args.batch)
        if args.dc_offsets:
            noisy, clean = without_dc(noisy, clean, cfg.hop_samples)
        loss, parts = loss_terms(model, torch.from_numpy(noisy), torch.from_numpy(clean), torch.from_numpy(cutoff),
                                 args.si_sdr_weight, args.low_band_weight, args.estoi_weight,
                                 args.magnitude_weight, args.complex_weight,
                                 args.over_suppression_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        window_loss.append(loss.item())

        if step % 50 == 0:
            rate = (time.time() - started) / 50
            started = time.time()
            print(f"step {step} loss {np.mean(window_loss):.4f} {json.dumps(parts)} "
                  f"lr {learning_rate(step, args):.2e} {rate:.2f} s/step", flush=True)
            window_loss = []
        if step % args.validate_every == 0 or step == args.steps:
            val = validate(model, val_batches, args.si_sdr_weight, args.low_band_weight,
                           args.estoi_weight, args.magnitude_weight, args.complex_weight,
                           args.over_suppression_weight)
            history.append({"step": step, "val": val, "time": time.time()})
            print(f"step {step} validation {val:.4f} (best {best:.4f})", flush=True)
            if val < best:
                best = val
                save(os.path.join(run_dir, "best.pt"), model, optimizer, step, best, rng, args, history)
        if step % args.checkpoint_every == 0 or step == args.steps:
            save(last_path, model, optimizer, step, best, rng, args, history)
    print(f"done at step {step}, best validation {best:.4f}", flush=True)


if __name__ == "__main__":
    main()
