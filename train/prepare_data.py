#!/usr/bin/python3
"""Fetch the speech and noise packages from Debian and build the training corpus.

Usage: /usr/bin/python3 train/prepare_data.py [--data DIR] [--corpus DIR] [--shared DIR] [--jobs N]
                                              [--narrowband-speech]

Downloads the packages with `apt-get download` (no install scripts run), unpacks them with
`dpkg-deb -x`, decodes every clip, resamples it to 48 kHz mono, measures its effective bandwidth
and noise floor, normalises its level, and writes one int16 array per split and kind:
DATA/corpus/{train,val,eval}_{speech,noise}.npy with a JSON index of the clips beside each.
--narrowband-speech adds the narrowband speech of sources.NARROWBAND_SPEECH_PACKAGES to the
training split. Give it its own --corpus so that the default corpus stays as it is.
The audio stays outside git; DATA defaults to ~/.cache/drsn-denoise.
"""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
from multiprocessing import Pool

import numpy as np
import scipy.signal
import soundfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from drsn import dedup, mixer, sources  # noqa: E402

RATE_HZ = 48000
SPEECH_LEVEL_DBFS = -26.0
NOISE_LEVEL_DBFS = -30.0
# Speech clips whose quietest 20 ms frame sits less than this far below the active level carry
# too much hiss to serve as clean targets. Short clips that are speech from end to end also have
# a high floor, which is why the bound is loose.
MAX_SPEECH_FLOOR_DB = -25.0


def default_data_dir():
    return os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise"))


def fetch_packages(data_dir, packages):
    debs = os.path.join(data_dir, "debs")
    unpacked = os.path.join(data_dir, "pkg")
    os.makedirs(debs, exist_ok=True)
    missing = [p for p in packages if not glob.glob(os.path.join(debs, f"{p}_*.deb"))]
    if missing:
        print(f"downloading {len(missing)} packages: {' '.join(missing)}", flush=True)
        subprocess.run(["apt-get", "download", *missing], cwd=debs, check=True)
    for p in packages:
        target = os.path.join(unpacked, p)
        if os.path.isdir(target):
            continue
        deb = sorted(glob.glob(os.path.join(debs, f"{p}_*.deb")))[-1]
        os.makedirs(target + ".tmp", exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", deb, target + ".tmp"], check=True)
        os.rename(target + ".tmp", target)
    ufoai = os.path.join(unpacked, "ufoai-sound")
    ufoai_x = os.path.join(unpacked, "ufoai-sound-extracted")
    if os.path.isdir(ufoai) and not os.path.isdir(ufoai_x):
        pk3 = glob.glob(os.path.join(ufoai, "usr/share/games/ufoai/base/*.pk3"))
        os.makedirs(ufoai_x + ".tmp", exist_ok=True)
        for f in pk3:
            subprocess.run(["unzip", "-qo", f, "-d", ufoai_x + ".tmp"], check=True)
        os.rename(ufoai_x + ".tmp", ufoai_x)
    # 0 A.D. keeps its data in one zip of about 3 GB, so only the ambience folder is unpacked.
    zero_ad = os.path.join(unpacked, "0ad-data")
    zero_ad_x = os.path.join(unpacked, "0ad-data-extracted")
    if os.path.isdir(zero_ad) and not os.path.isdir(zero_ad_x):
        public = os.path.join(zero_ad, "usr/share/games/0ad/mods/public/public.zip")
        os.makedirs(zero_ad_x + ".tmp", exist_ok=True)
        subprocess.run(["unzip", "-qo", public, "audio/ambient/*", "-d", zero_ad_x + ".tmp"], check=True)
        os.rename(zero_ad_x + ".tmp", zero_ad_x)
    extract_queen(unpacked)
    return unpacked


def extract_queen(unpacked):
    """Write the speech of Flight of the Amazon Queen's queen.1c as one MP3 file per line.

    The file starts with "QTBL", a 6-byte version, 2 padding bytes, a compression byte and a
    big-endian 16-bit entry count. Each entry is a 12-byte NUL-padded name, a bundle byte and
    big-endian 32-bit offset and size. The *.SB entries are complete MP3 streams."""
    package = os.path.join(unpacked, "flight-of-the-amazon-queen")
    target = package + "-extracted"
    if not os.path.isdir(package) or os.path.isdir(target):
        return
    path = os.path.join(package, "usr/share/scummvm/flight-of-the-amazon-queen/queen.1c")
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 15 or data[:4] != b"QTBL" or data[12] != 1:
        sys.exit(f"{path}: not a queen.1c file with MP3 speech")
    count = int.from_bytes(data[13:15], "big")
    if 15 + 21 * count > len(data):
        sys.exit(f"{path}: its table of {count} entries runs past the end of the file")
    os.makedirs(target + ".tmp", exist_ok=True)
    written = 0
    for i in range(count):
        entry = data[15 + 21 * i: 36 + 21 * i]
        name = entry[:12].rstrip(b"\0").decode("ascii")
        offset, size = int.from_bytes(entry[13:17], "big"), int.from_bytes(entry[17:21], "big")
        if not name.endswith(".SB"):
            continue
        if offset + size > len(data):
            sys.exit(f"{path}: entry {name} runs past the end of the file")
        with open(os.path.join(target + ".tmp", name + ".mp3"), "wb") as out:
            out.write(data[offset: offset + size])
        written += 1
    os.rename(target + ".tmp", target)
    print(f"queen.1c: {written} speech clips", flush=True)


def decode(path):
    """Return (mono float32 samples, native rate) of any file the corpus uses."""
    if path.endswith(".g722"):
        # Raw G.722 at 16 kHz has no header; ffmpeg has the decoder.
        out = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "g722", "-i", path, "-f", "f32le", "-ac", "1", "-"],
            check=True, capture_output=True).stdout
        return np.frombuffer(out, dtype=np.float32).copy(), 16000
    if path.endswith((".mp3", ".opus")):
        out = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", path, "-f", "f32le", "-ac", "1", "-ar", "48000", "-"],
            check=True, capture_output=True).stdout
        return np.frombuffer(out, dtype=np.float32).copy(), 48000
    x, rate = soundfile.read(path, dtype="float32", always_2d=True)
    return x.mean(axis=1), rate


def resample(x, rate):
    if rate == RATE_HZ:
        return x.astype(np.float32)
    g = np.gcd(int(rate), RATE_HZ)
    return scipy.signal.resample_poly(x, RATE_HZ // g, int(rate) // g).astype(np.float32)


def frame_levels_db(x, frame=960):
    n = len(x) // frame
    if n == 0:
        return np.array([10 * np.log10(np.mean(x ** 2) + 1e-12)])
    e = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    return 10 * np.log10(e + 1e-12)


def active_level_db(levels):
    """Mean energy of the frames within 40 dB of the loudest one."""
    active = levels[levels > levels.max() - 40]
    return 10 * np.log10(np.mean(10 ** (active / 10)))


def bandwidth_hz(x, rate):
    """Highest frequency at which the long-term spectrum of the loud frames is within 60 dB
    of its peak; the native Nyquist frequency bounds it."""
    nfft = 2048 if rate >= 32000 else 1024
    if len(x) < nfft:
        return rate / 2
    levels = frame_levels_db(x, nfft)
    frames = x[: len(levels) * nfft].reshape(len(levels), nfft)
    loud = frames[levels > np.median(levels)] if len(levels) > 2 else frames
    spec = np.mean(np.abs(np.fft.rfft(loud * np.hanning(nfft), axis=1)) ** 2, axis=0)
    spec = np.convolve(spec, np.ones(5) / 5, mode="same")
    spec_db = 10 * np.log10(spec + 1e-20)
    above = np.nonzero(spec_db > spec_db.max() - 60)[0]
    freqs = np.fft.rfftfreq(nfft, 1 / rate)
    return float(min(freqs[above[-1]] if len(above) else rate / 2, rate / 2))


def load_clip(job):
    path, kind, root = job
    rel = os.path.relpath(path, root)
    try:
        x, rate = decode(path)
    except Exception as e:  # noqa: BLE001 - a broken clip is skipped and reported
        return {"path": rel, "error": str(e)}
    if len(x) < rate * 0.3 or not np.all(np.isfinite(x)) or np.max(np.abs(x)) < 1e-4:
        return {"path": rel, "error": "too short or silent"}
    bw = bandwidth_hz(x, rate)
    y = resample(x, rate)
    levels = frame_levels_db(y)
    level = active_level_db(levels)
    floor = float(levels.min() - level)
    target = SPEECH_LEVEL_DBFS if kind == "speech" else NOISE_LEVEL_DBFS
    y = y * 10 ** ((target - level) / 20)
    peak = np.max(np.abs(y))
    if peak > 0.99:
        y = y * (0.99 / peak)
    return {"path": rel, "rate": int(rate), "bandwidth_hz": round(bw), "floor_db": round(floor, 1),
            "samples": (np.clip(y, -1, 1) * 32767).astype(np.int16)}


def collect_jobs(pkg_root, shared_dir, speech_packages):
    speech, noise = [], []
    for p in speech_packages:
        # Packed speech is read from the files fetch_packages extracted.
        if os.path.isdir(os.path.join(pkg_root, p + "-extracted")):
            p += "-extracted"
        for f in sources.find_audio(os.path.join(pkg_root, p)):
            rel = os.path.relpath(f, pkg_root)
            spk = sources.speech_speaker(rel)
            if spk:
                speech.append((f, "speech", pkg_root, spk))
    for p in list(sources.NOISE_PACKAGES) + ["ufoai-sound-extracted", "0ad-data-extracted"]:
        if p in ("ufoai-sound", "0ad-data", "bucklespring-data"):
            continue
        for f in sources.find_audio(os.path.join(pkg_root, p)):
            rel = os.path.relpath(f, pkg_root)
            if sources.is_noise_file(rel):
                noise.append((f, "noise", pkg_root, None))
    if shared_dir and os.path.isdir(os.path.join(shared_dir, "noise")):
        for f in sources.find_audio(os.path.join(shared_dir, "noise")):
            noise.append((f, "noise", shared_dir, None))
    return speech, noise


def write_split(out_dir, name, clips):
    total = sum(len(c["samples"]) for c in clips)
    data = np.zeros(total, dtype=np.int16)
    index, offset = [], 0
    for c in clips:
        n = len(c["samples"])
        data[offset: offset + n] = c["samples"]
        entry = {k: v for k, v in c.items() if k != "samples"}
        entry.update(offset=offset, length=n)
        index.append(entry)
        offset += n
    np.save(os.path.join(out_dir, f"{name}.npy"), data)
    with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
        json.dump(index, f, indent=0)
    print(f"{name}: {len(clips)} clips, {total / RATE_HZ / 3600:.2f} h", flush=True)


def drop_copies(splits, rejected, pool):
    """Move training noise clips that copy a held-out recording to the rejected list."""
    held_out = splits["eval_noise"] + splits["val_noise"]
    train = splits["train_noise"]
    copies = dedup.find_copies([c["samples"] for c in train], [c["samples"] for c in held_out], pool)
    for i, (j, score) in sorted(copies.items()):
        rejected.append({"path": train[i]["path"],
                         "error": f"copy of held-out {held_out[j]['path']} (correlation {score:.2f})"})
    splits["train_noise"] = [c for i, c in enumerate(train) if i not in copies]
    print(f"{len(copies)} training noise clips copy a held-out recording; dropped", flush=True)


def set_speech_shares(clips):
    """Set the pick_weight of the clips of every source in sources.SPEECH_SHARE, so that the
    mixer picks that source with the share that SPEECH_SHARE sets."""
    for source, share in sources.SPEECH_SHARE.items():
        mine = [c for c in clips if sources.speech_source(c["path"]) == source]
        others = [c for c in clips if sources.speech_source(c["path"]) != source]
        if not mine or not others:
            continue
        mass = mixer.pick_weights([len(c["samples"]) for c in mine], [1.0] * len(mine)).sum()
        rest = mixer.pick_weights([len(c["samples"]) for c in others],
                                  [c.get("pick_weight", 1.0) for c in others]).sum()
        weight = share / (1.0 - share) * rest / mass
        for c in mine:
            c["pick_weight"] = round(float(weight), 6)
        print(f"{source}: {len(mine)} clips, pick weight {weight:.4f} for a share of {share:.0%}",
              flush=True)


def build_typing(pkg_root, out_dir):
    """Keep the bucklespring key recordings as a bank for synthetic typing noise."""
    keys = []
    for f in sources.find_audio(os.path.join(pkg_root, "bucklespring-data")):
        x, rate = decode(f)
        keys.append(resample(x, rate))
    n = max(len(k) for k in keys)
    bank = np.zeros((len(keys), n), dtype=np.float32)
    for i, k in enumerate(keys):
        bank[i, : len(k)] = k / (np.max(np.abs(k)) + 1e-9)
    np.save(os.path.join(out_dir, "typing_keys.npy"), bank)
    print(f"typing: {len(keys)} key recordings", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=default_data_dir(), help="cache directory for packages and corpus")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"),
                    help="optional directory with extra full-band noise recordings (noise/*)")
    ap.add_argument("--corpus", default=None, help="output directory (default: DATA/corpus)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--narrowband-speech", action="store_true",
                    help="add the narrowband speech packages to the training split")
    args = ap.parse_args()

    missing = [tool for tool in ("apt-get", "dpkg-deb", "ffmpeg", "unzip") if not shutil.which(tool)]
    if missing:
        sys.exit(f"prepare_data.py: missing programs: {' '.join(missing)}; "
                 "install them with: apt-get install ffmpeg unzip")

    speech_packages = list(sources.SPEECH_PACKAGES)
    if args.narrowband_speech:
        speech_packages += list(sources.NARROWBAND_SPEECH_PACKAGES)
    pkg_root = fetch_packages(args.data, speech_packages + list(sources.NOISE_PACKAGES))
    out_dir = args.corpus or os.path.join(args.data, "corpus")
    os.makedirs(out_dir, exist_ok=True)
    speech_jobs, noise_jobs = collect_jobs(pkg_root, os.path.abspath(args.shared), speech_packages)
    print(f"{len(speech_jobs)} speech and {len(noise_jobs)} noise files", flush=True)

    with Pool(args.jobs) as pool:
        speech = pool.map(load_clip, [j[:3] for j in speech_jobs], chunksize=16)
        noise = pool.map(load_clip, [j[:3] for j in noise_jobs], chunksize=4)

    splits = {f"{s}_{k}": [] for s in ("train", "val", "eval") for k in ("speech", "noise")}
    rejected = []
    for clip, job in zip(speech, speech_jobs):
        if "error" in clip:
            rejected.append(clip)
            continue
        if clip["floor_db"] > MAX_SPEECH_FLOOR_DB:
            rejected.append({"path": clip["path"], "error": f"noise floor {clip['floor_db']} dB"})
            continue
        clip["speaker"] = job[3]
        splits[sources.speech_split(job[3]) + "_speech"].append(clip)
    for clip, job in zip(noise, noise_jobs):
        if "error" in clip:
            rejected.append(clip)
            continue
        if job[2] != pkg_root:
            clip["path"] = "shared/" + clip["path"]
        splits[sources.noise_split(clip["path"]) + "_noise"].append(clip)

    with Pool(args.jobs) as pool:
        drop_copies(splits, rejected, pool)
    set_speech_shares(splits["train_speech"])
    for name, clips in splits.items():
        write_split(out_dir, name, clips)
    build_typing(pkg_root, out_dir)
    with open(os.path.join(out_dir, "rejected.json"), "w") as f:
        json.dump(rejected, f, indent=0)
    print(f"rejected {len(rejected)} clips (see rejected.json)")


if __name__ == "__main__":
    main()
