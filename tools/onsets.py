#!/usr/bin/python3
"""Word-onset energy: does processing keep the start of every word at its level?

Onsets are found in the clean input with a frame-energy rule:

1. cut the input into consecutive 10 ms frames (no overlap, no window) and take each frame's
   energy, the mean of its squared samples;
2. the threshold is the energy of the loudest frame minus 30 dB;
3. an onset is a frame at or above the threshold that follows at least 10 frames (100 ms) in
   a row below it. Frames before the start of the file do not count, so a word in the first
   100 ms has no onset.

For each onset the energy of the 50 ms of the input and of the processed signal that start at
the onset frame's first sample is compared in dB. Each signal loses its mean first, so that a
DC offset counts neither in the onsets nor in their energy. The processed signal must be
sample-aligned with the input, as the drsn-denoise renderer writes it. Run as a program, it
prints a table of the onsets and the worst difference:

    /usr/bin/python3 tools/onsets.py CLEAN.wav PROCESSED.wav [--tolerance DB]
"""

import argparse
import sys

import numpy as np
import soundfile

FRAME_SECONDS = 0.010
THRESHOLD_DB = -30.0
MIN_GAP_FRAMES = 10
WINDOW_SECONDS = 0.050
# Energy floor in dB calculations, far below the quietest 16-bit signal.
_TINY_ENERGY = 1e-20


def read_mono(path):
    """Return (float64 samples, rate in Hz) of a mono audio file that libsndfile reads."""
    samples, rate_hz = soundfile.read(path, dtype="float64", always_2d=True)
    if samples.shape[1] != 1:
        raise ValueError(f"{path}: expected a mono file, found {samples.shape[1]} channels")
    return samples[:, 0], rate_hz


def energy_db(samples):
    """Return the mean square of samples in dB relative to a full-scale square wave."""
    return 10.0 * np.log10(np.mean(np.square(samples)) + _TINY_ENERGY)


def frame_energies(samples, rate_hz, frame_seconds=FRAME_SECONDS):
    """Return the mean square of each whole frame, leaving out a partial last frame."""
    frame = int(round(frame_seconds * rate_hz))
    count = len(samples) // frame
    return np.mean(np.square(samples[: count * frame].reshape(count, frame)), axis=1)


def find_onsets(samples, rate_hz, threshold_db=THRESHOLD_DB, min_gap_frames=MIN_GAP_FRAMES,
                frame_seconds=FRAME_SECONDS):
    """Return the first sample of every onset frame, by the rule in the module docstring."""
    energies = frame_energies(samples, rate_hz, frame_seconds)
    if energies.size == 0 or energies.max() <= 0.0:
        return []
    threshold = energies.max() * 10.0 ** (threshold_db / 10.0)
    frame = int(round(frame_seconds * rate_hz))
    onsets = []
    frames_below = 0
    for index, energy in enumerate(energies):
        if energy < threshold:
            frames_below += 1
            continue
        if frames_below >= min_gap_frames:
            onsets.append(index * frame)
        frames_below = 0
    return onsets


def compare_onsets(clean, processed, rate_hz, window_seconds=WINDOW_SECONDS, **onset_options):
    """Return one dict per onset of clean: time_s, input_db, output_db and difference_db.

    difference_db is output_db - input_db, so a negative value means the processing lowered
    the start of the word. A window that runs past the end of the file is shortened.
    """
    clean = np.asarray(clean, dtype=np.float64)
    processed = np.asarray(processed, dtype=np.float64)
    if clean.shape != processed.shape or clean.ndim != 1:
        raise ValueError(f"expected two mono signals of equal length, got shapes {clean.shape} "
                         f"and {processed.shape}")
    clean = clean - np.mean(clean)
    processed = processed - np.mean(processed)
    window = int(round(window_seconds * rate_hz))
    rows = []
    for start in find_onsets(clean, rate_hz, **onset_options):
        input_db = energy_db(clean[start:start + window])
        output_db = energy_db(processed[start:start + window])
        rows.append({
            "time_s": start / rate_hz,
            "input_db": input_db,
            "output_db": output_db,
            "difference_db": output_db - input_db,
        })
    return rows


def worst_onset(rows):
    """Return the row with the largest absolute difference, or None when there are none."""
    return max(rows, key=lambda row: abs(row["difference_db"]), default=None)


def format_table(rows):
    lines = ["  time s   input dBFS  output dBFS  difference dB"]
    for row in rows:
        lines.append(f"{row['time_s']:8.2f}  {row['input_db']:11.2f}  {row['output_db']:11.2f}"
                     f"  {row['difference_db']:13.2f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Compare the energy of the first 50 ms of every word onset in CLEAN "
        "with the same samples of PROCESSED.")
    parser.add_argument("clean", help="clean input, mono, any format libsndfile reads")
    parser.add_argument("processed", help="CLEAN after processing, sample-aligned with it")
    parser.add_argument("--tolerance", type=float, metavar="DB",
                        help="exit with status 1 when any onset differs by more than DB dB")
    arguments = parser.parse_args(argv)

    try:
        clean, clean_rate = read_mono(arguments.clean)
        processed, processed_rate = read_mono(arguments.processed)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"onsets: {error}", file=sys.stderr)
        return 2
    if clean_rate != processed_rate or len(clean) != len(processed):
        print(f"onsets: {arguments.processed} has {len(processed)} samples at {processed_rate} Hz, "
              f"expected {len(clean)} at {clean_rate} Hz like {arguments.clean}", file=sys.stderr)
        return 2

    rows = compare_onsets(clean, processed, clean_rate)
    if not rows:
        print(f"onsets: no word onset found in {arguments.clean}", file=sys.stderr)
        return 2
    print(format_table(rows))
    worst = worst_onset(rows)
    print(f"{len(rows)} onsets; worst difference {worst['difference_db']:+.2f} dB "
          f"at {worst['time_s']:.2f} s")
    if arguments.tolerance is not None and abs(worst["difference_db"]) > arguments.tolerance:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
