#!/usr/bin/python3
"""Musical noise and pumping: how steady is a denoiser's gain where there is only noise?

Given the noisy input, the processed output (sample-aligned with the input) and the clean
reference, it measures the effective gain of every band in the frames that hold only noise.

- Framing: 20 ms periodic square-root Hann windows with a 10 ms hop (960 and 480 samples at
  48 kHz), not centred, as in the engine.
- Bands: the 32 band centres of the default model, with the engine's triangular weights
  (docs/design.md). A band energy is the weighted sum of |X[k]|^2 over its bins.
- Effective gain of band b in frame t: 10 log10(output energy / input energy) in dB.
- Noise-only frames: frames whose clean-reference energy is more than 50 dB below the loudest
  clean frame, minus a guard of 5 frames (50 ms) on either side of every louder frame.
  Consecutive noise-only frames form a stretch, and stretches shorter than 5 frames are left
  out. With skip_seconds (--skip) above 0, frames that start earlier are not noise-only either,
  which keeps a denoiser's start-up (speexdsp's noise estimate starts from zero) out of the
  statistics.
- Near-empty bands: a band of a frame is left out when its input energy is more than 60 dB
  below the loudest input band energy of the noise-only frames. The gain of such a band is the
  ratio of two rounding errors, for example above the bandwidth of band-limited noise.

Reported statistics:

- gain_std_db: the mean over bands of each band's standard deviation of the gain in dB. The
  deviations are taken about the mean of each stretch and pooled over the stretches. Musical
  noise and pumping raise it.
- flicker_db: the mean absolute change of a band's gain in dB from one frame to the next
  within a stretch, over bands and frame pairs.
- attenuation_db: the mean over noise-only frames of the frame's input energy over its output
  energy in dB (all bins), so 20 means the noise was lowered by 20 dB.

NOTE: a gain held at a denoiser's reduction limit (30 dB by default in drsn-denoise, 15 dB in
the speexdsp runner) does not vary, so gain_std_db and flicker_db are low for a file whose noise
sits at that limit. Read them together with attenuation_db.

Run as a program on one file triple, or on every pair of an evaluation manifest whose outputs
are in a directory as ID.wav (tools/evaluate.py --work-dir W writes them to W/SYSTEM):

    /usr/bin/python3 tools/gain_stats.py NOISY PROCESSED CLEAN
    /usr/bin/python3 tools/gain_stats.py --manifest eval.csv --processed-dir DIR
"""

import argparse
import csv
import os
import sys

import numpy as np

from onsets import read_mono

# The band centres of the default model, models/default.drsn, as docs/design.md lists them.
BAND_CENTRES_HZ = (
    0.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0, 900.0, 1000.0, 1100.0,
    1200.0, 1300.0, 1500.0, 1750.0, 2100.0, 2450.0, 2850.0, 3350.0, 3900.0, 4550.0, 5300.0,
    6150.0, 7100.0, 8250.0, 9600.0, 11100.0, 12900.0, 14900.0, 17300.0, 20000.0,
)
HOP_SECONDS = 0.010
HOPS_PER_WINDOW = 2
NOISE_ONLY_BELOW_DB = -50.0
GUARD_FRAMES = 5
MIN_STRETCH_FRAMES = 5
EMPTY_BAND_RANGE_DB = 60.0
STATISTICS = ("gain_std_db", "flicker_db", "attenuation_db")


def framing(rate_hz):
    """Return (window, hop) in samples at rate_hz."""
    hop = max(1, int(round(HOP_SECONDS * rate_hz)))
    return hop * HOPS_PER_WINDOW, hop


def band_weights(window, rate_hz, centres_hz=BAND_CENTRES_HZ):
    """Return the [bands, bins] triangular band weights of docs/design.md.

    The weights of every bin add up to 1.
    """
    centres = np.asarray(centres_hz, dtype=np.float64)
    frequencies = np.arange(window // 2 + 1) * rate_hz / window
    weights = np.zeros((len(centres), len(frequencies)))
    weights[0, frequencies <= centres[0]] = 1.0
    weights[-1, frequencies >= centres[-1]] = 1.0
    for band in range(len(centres) - 1):
        low, high = centres[band], centres[band + 1]
        inside = (frequencies > low if band == 0 else frequencies >= low) & (frequencies < high)
        position = (frequencies[inside] - low) / (high - low)
        weights[band, inside] = 1.0 - position
        weights[band + 1, inside] = position
    return weights


def power_spectra(samples, window, hop):
    """Return |X[k]|^2 of every whole frame, shape [frames, window // 2 + 1]."""
    if len(samples) < window:
        return np.zeros((0, window // 2 + 1))
    analysis = np.sqrt(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(window) / window))
    frames = np.lib.stride_tricks.sliding_window_view(samples, window)[::hop]
    return np.abs(np.fft.rfft(frames * analysis, axis=1)) ** 2


def noise_only_frames(clean_power, below_db=NOISE_ONLY_BELOW_DB, guard_frames=GUARD_FRAMES):
    """Return a boolean mask of the frames where the clean reference is silent.

    clean_power is [frames, bins]. A silent reference (all zeros) makes every frame noise-only.
    """
    energies = clean_power.sum(axis=1)
    peak = energies.max(initial=0.0)
    if peak <= 0.0:
        return np.ones(len(energies), dtype=bool)
    speech = energies >= peak * 10.0 ** (below_db / 10.0)
    guarded = speech.copy()
    for shift in range(1, guard_frames + 1):
        guarded[shift:] |= speech[:-shift]
        guarded[:-shift] |= speech[shift:]
    return ~guarded


def stretches(mask, min_frames=MIN_STRETCH_FRAMES):
    """Return (start, stop) of every run of True in mask that is at least min_frames long."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = zip(edges[0::2], edges[1::2])
    return [(int(start), int(stop)) for start, stop in runs if stop - start >= min_frames]


def gain_statistics(noisy, processed, clean, rate_hz, centres_hz=BAND_CENTRES_HZ,
                    skip_seconds=0.0):
    """Return a dict of the statistics in the module docstring, plus noise_frames and bands.

    The statistics are None when the clean reference leaves no noise-only stretch.
    """
    signals = [np.asarray(signal, dtype=np.float64) for signal in (noisy, processed, clean)]
    if any(signal.ndim != 1 for signal in signals) or len({len(s) for s in signals}) != 1:
        raise ValueError("expected three mono signals of equal length, got shapes "
                         + ", ".join(str(signal.shape) for signal in signals))
    noisy, processed, clean = signals
    if skip_seconds < 0.0:
        raise ValueError(f"skip_seconds is {skip_seconds}, expected 0 or more")
    window, hop = framing(rate_hz)
    weights = band_weights(window, rate_hz, centres_hz)
    noisy_power = power_spectra(noisy, window, hop)
    processed_power = power_spectra(processed, window, hop)
    noisy_bands = noisy_power @ weights.T
    processed_bands = processed_power @ weights.T

    noise_only = noise_only_frames(power_spectra(clean, window, hop))
    noise_only[: int(np.ceil(skip_seconds * rate_hz / hop))] = False
    runs = stretches(noise_only)
    result = {"noise_frames": sum(stop - start for start, stop in runs), "bands": 0}
    result.update({name: None for name in STATISTICS})
    if not runs:
        return result

    noise_rows = np.concatenate([np.arange(start, stop) for start, stop in runs])
    floor = noisy_bands[noise_rows].max() * 10.0 ** (-EMPTY_BAND_RANGE_DB / 10.0)
    valid = noisy_bands > floor
    with np.errstate(divide="ignore", invalid="ignore"):
        gains_db = 10.0 * np.log10(processed_bands / noisy_bands)
    valid &= np.isfinite(gains_db)

    band_std = []
    changes = []
    for band in range(weights.shape[0]):
        squared_deviations = []
        for start, stop in runs:
            usable = valid[start:stop, band]
            values = gains_db[start:stop, band]
            if usable.sum() >= 2:
                usable_values = values[usable]
                squared_deviations.append((usable_values - usable_values.mean()) ** 2)
            both = usable[1:] & usable[:-1]
            changes.append(np.abs(np.diff(values))[both])
        if squared_deviations:
            band_std.append(np.sqrt(np.mean(np.concatenate(squared_deviations))))
    changes = np.concatenate(changes)

    noisy_energy = noisy_power[noise_rows].sum(axis=1)
    processed_energy = processed_power[noise_rows].sum(axis=1)
    audible = noisy_energy > 0.0
    with np.errstate(divide="ignore"):
        frame_attenuation = 10.0 * np.log10(noisy_energy[audible] / processed_energy[audible])
    frame_attenuation = frame_attenuation[np.isfinite(frame_attenuation)]

    result["bands"] = len(band_std)
    if band_std:
        result["gain_std_db"] = float(np.mean(band_std))
    if changes.size:
        result["flicker_db"] = float(np.mean(changes))
    if frame_attenuation.size:
        result["attenuation_db"] = float(np.mean(frame_attenuation))
    return result


def statistics_of_files(noisy_path, processed_path, clean_path, skip_seconds=0.0):
    """Read three mono files of one rate and length and return gain_statistics of them."""
    noisy, noisy_rate = read_mono(noisy_path)
    processed, processed_rate = read_mono(processed_path)
    clean, clean_rate = read_mono(clean_path)
    if not noisy_rate == processed_rate == clean_rate:
        raise ValueError(f"sample rates differ: noisy {noisy_rate} Hz, processed "
                         f"{processed_rate} Hz, clean {clean_rate} Hz")
    if not len(noisy) == len(processed) == len(clean):
        raise ValueError(f"lengths differ: noisy {len(noisy)}, processed {len(processed)}, "
                         f"clean {len(clean)} samples")
    return gain_statistics(noisy, processed, clean, noisy_rate, skip_seconds=skip_seconds)


def read_manifest(path):
    """Return (id, noisy path, clean path) of every row, with paths relative to the CSV file."""
    directory = os.path.dirname(os.path.abspath(path))
    with open(path, newline="", encoding="utf-8") as stream:
        reader = csv.DictReader(stream)
        missing = {"id", "clean", "noisy"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return [(row["id"], os.path.join(directory, row["noisy"]),
                 os.path.join(directory, row["clean"])) for row in reader]


def mean_statistics(results):
    """Return the mean of each statistic over the results where it is not None."""
    means = {}
    for name in STATISTICS:
        values = [result[name] for result in results if result[name] is not None]
        means[name] = float(np.mean(values)) if values else None
    means["files"] = sum(1 for result in results if result["gain_std_db"] is not None)
    return means


def format_statistics(statistics):
    return "  ".join(f"{name} {'n/a' if statistics[name] is None else format(statistics[name], '.2f')}"
                     for name in STATISTICS)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Measure how much a denoiser's band gains vary and flicker in the "
        "noise-only frames, and how far it lowers them.")
    parser.add_argument("files", nargs="*", metavar="FILE", help="NOISY PROCESSED CLEAN")
    parser.add_argument("--manifest", help="CSV with the columns id, noisy and clean")
    parser.add_argument("--processed-dir", help="directory of the outputs, one ID.wav per row")
    parser.add_argument("--skip", type=float, default=0.0, metavar="SECONDS",
                        help="leave out the frames that start in the first SECONDS (default 0)")
    parser.add_argument("--verbose", action="store_true",
                        help="with --manifest, also print the statistics of every file")
    arguments = parser.parse_args(argv)

    try:
        if arguments.manifest is None:
            if len(arguments.files) != 3 or arguments.processed_dir is not None:
                parser.error("expected NOISY PROCESSED CLEAN, or --manifest with --processed-dir")
            statistics = statistics_of_files(*arguments.files, skip_seconds=arguments.skip)
            print(f"{format_statistics(statistics)}  noise_frames {statistics['noise_frames']}")
            return 0
        if arguments.files or arguments.processed_dir is None:
            parser.error("--manifest takes --processed-dir and no file arguments")
        results = []
        for identifier, noisy_path, clean_path in read_manifest(arguments.manifest):
            processed_path = os.path.join(arguments.processed_dir, f"{identifier}.wav")
            results.append(statistics_of_files(noisy_path, processed_path, clean_path,
                                               skip_seconds=arguments.skip))
            if arguments.verbose:
                print(f"{identifier}  {format_statistics(results[-1])}")
    except (OSError, ValueError, RuntimeError) as error:
        print(f"gain_stats: {error}", file=sys.stderr)
        return 1
    means = mean_statistics(results)
    print(f"mean of {means['files']} of {len(results)} files  {format_statistics(means)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
