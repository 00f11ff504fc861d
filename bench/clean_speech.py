#!/usr/bin/python3
"""Clean speech through each denoiser: pass-through fidelity and word onsets.

A denoiser should leave speech without noise unchanged. Each system runs on the clean clips
of an evaluation manifest, from its clean column, and a clip that several rows share runs once.
The score of a clip is the SI-SDR of the output against the clip itself (tools/metrics.py).
On a word-onset clip it runs the check of tools/onsets.py: the number of word onsets, and the
largest difference in dB between the energy of the first 50 ms of a word in the output and in
the input.

A system is NAME=COMMAND as in tools/evaluate.py: COMMAND is split like a shell command line
and its words {in} and {out} are replaced by the input and output files. Every output must
have its input's rate and length, aligned sample for sample. It prints a Markdown table and
can write every clip's numbers to a JSON file:

    /usr/bin/python3 bench/clean_speech.py --manifest eval.csv \\
        --onset-clip tests/data/onset-speech.flac --work-dir DIR \\
        --system 'drsn-denoise=build/tools/drsn-denoise -q -f {in} {out}' --json FILE
"""

import argparse
import json
import os
import sys

import numpy as np
import soundfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))

import evaluate  # noqa: E402
import metrics  # noqa: E402
import onsets  # noqa: E402


def distinct_clean_clips(manifest_path):
    """Return the clean clips of a manifest in manifest order, each real path once."""
    clips = []
    seen = set()
    for row in evaluate.read_manifest(manifest_path):
        real_path = os.path.realpath(row["clean"])
        if real_path not in seen:
            seen.add(real_path)
            clips.append(row["clean"])
    return clips


def read_clip(clip_path):
    """Return (samples as float64, rate in Hz) of a mono clip.

    Raises an EvaluationError that names the clip when it cannot be read, is empty, has more than
    one channel or contains NaN or infinite samples.
    """
    try:
        samples, rate_hz = soundfile.read(clip_path, dtype="float64")
    except (RuntimeError, OSError) as error:
        raise evaluate.EvaluationError(f"cannot read {clip_path}: {error}") from None
    if samples.ndim != 1:
        raise evaluate.EvaluationError(f"{clip_path}: expected a mono file, found {samples.shape[1]} channels")
    if len(samples) == 0:
        raise evaluate.EvaluationError(f"{clip_path}: empty file, no samples")
    if not np.all(np.isfinite(samples)):
        raise evaluate.EvaluationError(f"{clip_path}: contains NaN or infinite samples")
    return samples, rate_hz


def copy_path(clip_path, index, directory):
    """Return the WAV path in directory (made if missing) for the copy of a clip with an index."""
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, f"{index:04d}-{os.path.splitext(os.path.basename(clip_path))[0]}.wav")


def start_on_speech_copy(clip_path, index, directory):
    """Write a clip as 32-bit float without its leading digital silence and return the new path.

    The stored clips start with 0.2 s of zeros, and a recording trimmed to its first word has
    none: the denoiser must then pass the speech from the first sample on.
    """
    samples, rate_hz = read_clip(clip_path)
    sounding = np.flatnonzero(samples != 0.0)
    if len(sounding) == 0:
        raise evaluate.EvaluationError(f"{clip_path} is digital silence throughout")
    if len(samples) - sounding[0] < rate_hz // 10:
        raise evaluate.EvaluationError(
            f"{clip_path}: less than 0.1 s is left after its leading digital silence")
    if np.ptp(samples[sounding[0]:]) == 0.0:
        raise evaluate.EvaluationError(
            f"{clip_path}: only a constant is left after its leading digital silence")
    path = copy_path(clip_path, index, directory)
    soundfile.write(path, samples[sounding[0]:].astype(np.float32), rate_hz, subtype="FLOAT")
    return path


def offset_copy(clip_path, index, directory, offset):
    """Write a clip as 32-bit float with offset added to every sample and return the new path."""
    samples, rate_hz = read_clip(clip_path)
    path = copy_path(clip_path, index, directory)
    soundfile.write(path, (samples + offset).astype(np.float32), rate_hz, subtype="FLOAT")
    return path


def dithered_copy(clip_path, index, directory, offset=0.0):
    """Write a clip as 16-bit PCM with triangular dither and return the new path.

    Real recordings have a noise floor where stored clips often have digital silence, so the
    rounding and dither add one at about -96 dBFS. The dither is seeded by the index. The
    offset, in full-scale units, is added before the rounding.
    """
    samples, rate_hz = read_clip(clip_path)
    samples = samples + offset
    generator = np.random.default_rng(index)
    noise = generator.uniform(-0.5, 0.5, samples.shape) + generator.uniform(-0.5, 0.5, samples.shape)
    quantised = np.clip(np.round(samples * 32768.0 + noise), -32768, 32767).astype(np.int16)
    path = copy_path(clip_path, index, directory)
    soundfile.write(path, quantised, rate_hz, subtype="PCM_16")
    return path


def noise_first_copy(clip_path, seconds, directory):
    """Write the clip after that many seconds of white noise at -30 dBFS.

    Returns the new path and the number of noise samples in front of the speech.
    """
    samples, rate_hz = read_clip(clip_path)
    noise = np.random.default_rng(0).standard_normal(int(round(seconds * rate_hz))) * 10 ** (-30 / 20)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"noise-first-{os.path.splitext(os.path.basename(clip_path))[0]}.wav")
    soundfile.write(path, np.concatenate([noise, samples]).astype(np.float32), rate_hz, subtype="FLOAT")
    return path, len(noise)


def render(name, words, clip_path, out_path, read_mono):
    """Run a system on a clip and return (clip samples, output samples, rate in Hz).

    read_mono reads a file as (samples, rate). The output must match the clip in both.
    """
    clip, clip_rate = read_mono(clip_path)
    processed_path, _ = evaluate.run_system(name, words, clip_path, out_path)
    processed, processed_rate = read_mono(processed_path)
    if processed_rate != clip_rate or len(processed) != len(clip):
        raise evaluate.EvaluationError(
            f"system {name}: {processed_path} has {len(processed)} samples at "
            f"{processed_rate} Hz, expected {len(clip)} at {clip_rate} Hz like {clip_path}"
        )
    return clip, processed, clip_rate


def clean_si_sdr(name, words, clip_path, out_path):
    """Run a system on a clean WAV clip and return the SI-SDR of its output against the clip."""
    read_clip(clip_path)
    clip, processed, _ = render(name, words, clip_path, out_path, metrics.read_mono)
    if not np.all(np.isfinite(processed)):
        raise evaluate.EvaluationError(f"system {name}: the output for {clip_path} contains NaN or infinite samples")
    try:
        return metrics.si_sdr(clip, processed)
    except ValueError as error:
        raise evaluate.EvaluationError(f"{clip_path}: {error}") from None


def onset_rows(name, words, clip_path, out_path, skip=0):
    """Run a system on the onset clip and return the rows of onsets.compare_onsets.

    The first skip samples (noise in front of the speech) are left out of the comparison.
    """
    clip, processed, rate_hz = render(name, words, clip_path, out_path, onsets.read_mono)
    rows = onsets.compare_onsets(clip[skip:], processed[skip:], rate_hz)
    if not rows:
        raise evaluate.EvaluationError(f"no word onset found in {clip_path}")
    return rows


def measure_system(name, words, clips, onset_clip, work_directory, onset_skip=0):
    """Return the clean-speech results of one system as a dictionary."""
    directory = os.path.join(work_directory, name)
    os.makedirs(directory, exist_ok=True)
    result = {"system": name, "clips": [], "onsets": []}
    for index, clip in enumerate(clips):
        # The index keeps apart clips that share a base name in different folders.
        out_path = os.path.join(directory, f"{index:04d}-{os.path.basename(clip)}")
        result["clips"].append(
            {"clip": clip, "si_sdr": clean_si_sdr(name, words, clip, out_path)}
        )
    if onset_clip:
        out_path = os.path.join(directory, f"onsets-{os.path.basename(onset_clip)}")
        result["onsets"] = onset_rows(name, words, onset_clip, out_path, onset_skip)
    return result


def markdown_table(results, with_clips, with_onsets):
    lines = [
        "| system | clean clips | mean SI-SDR (dB) | worst SI-SDR (dB) | word onsets "
        "| worst onset difference (dB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        clip_cells = ["—", "—", "—"]
        if with_clips:
            values = [clip["si_sdr"] for clip in result["clips"]]
            clip_cells = [str(len(values)), f"{np.mean(values):.2f}", f"{min(values):.2f}"]
        onset_cells = ["—", "—"]
        if with_onsets:
            worst = onsets.worst_onset(result["onsets"])
            # Adding 0.0 turns a rounded -0.0 into 0.0, which prints as +0.00.
            difference = round(worst["difference_db"], 2) + 0.0
            onset_cells = [str(len(result["onsets"])), f"{difference:+.2f}"]
        lines.append(f"| {result['system']} | " + " | ".join(clip_cells + onset_cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Render clean speech with each system and report the SI-SDR of the "
        "output against the input and the word-onset check of tools/onsets.py.",
        epilog="Exit status: 0 on success, 1 when a system or a file failed, "
        "2 on an invalid command line.",
    )
    parser.add_argument("--manifest", help="evaluation CSV whose clean column lists the clips")
    parser.add_argument("--onset-clip", metavar="FILE",
                        help="clean speech for the word-onset check, mono")
    parser.add_argument("--system", action="append", required=True, metavar="NAME=COMMAND",
                        help="a system to run; COMMAND uses {in} and {out}")
    parser.add_argument("--work-dir", required=True, metavar="DIR",
                        help="directory for the outputs, one folder per system")
    parser.add_argument("--json", metavar="FILE", help="write every clip's results here")
    parser.add_argument("--dither", action="store_true",
                        help="score 16-bit copies of the clips with triangular dither instead, "
                        "a noise floor at about -96 dBFS in place of digital silence")
    parser.add_argument("--dc-offset", type=float, default=0.0, metavar="VALUE",
                        help="add this DC offset (full scale is 1) to every clip, as a cheap "
                        "interface does; the output is scored against the clip with the offset")
    parser.add_argument("--start-on-speech", action="store_true",
                        help="cut the leading digital silence of each clip (not of the onset "
                        "clip), so that it starts on its first word; before --dither and --dc-offset")
    parser.add_argument("--noise-before", type=float, default=0.0, metavar="SECONDS",
                        help="put that many seconds of white noise at -30 dBFS in front of the "
                        "onset clip and check the onsets of the speech after it")
    arguments = parser.parse_args(argv)
    if not arguments.manifest and not arguments.onset_clip:
        parser.error("give --manifest, --onset-clip or both")
    if not abs(arguments.dc_offset) < 1.0:
        parser.error(f"invalid --dc-offset {arguments.dc_offset}: use a value between -1 and 1")

    try:
        systems = [evaluate.parse_system(text) for text in arguments.system]
        names = [name for name, _ in systems]
        if len(set(names)) != len(names):
            raise evaluate.EvaluationError("two systems have the same name")
        clips = distinct_clean_clips(arguments.manifest) if arguments.manifest else []
        if arguments.start_on_speech:
            start_directory = os.path.join(arguments.work_dir, "start-on-speech-input")
            clips = [start_on_speech_copy(clip, index, start_directory) for index, clip in enumerate(clips)]
        onset_clip = arguments.onset_clip
        offset = arguments.dc_offset
        if arguments.dither:
            dither_directory = os.path.join(arguments.work_dir, "dithered-input")
            clips = [dithered_copy(clip, index, dither_directory, offset)
                     for index, clip in enumerate(clips)]
            if onset_clip:
                onset_clip = dithered_copy(onset_clip, len(clips), dither_directory, offset)
        elif offset != 0.0:
            offset_directory = os.path.join(arguments.work_dir, "offset-input")
            clips = [offset_copy(clip, index, offset_directory, offset) for index, clip in enumerate(clips)]
            if onset_clip:
                onset_clip = offset_copy(onset_clip, len(clips), offset_directory, offset)
        onset_skip = 0
        if onset_clip and arguments.noise_before > 0:
            onset_clip, onset_skip = noise_first_copy(
                onset_clip, arguments.noise_before, os.path.join(arguments.work_dir, "noise-first-input"))
        results = [measure_system(name, words, clips, onset_clip, arguments.work_dir, onset_skip)
                   for name, words in systems]
    except (evaluate.EvaluationError, ValueError, OSError, RuntimeError) as error:
        print(f"clean_speech.py: {error}", file=sys.stderr)
        return 1

    print(markdown_table(results, bool(clips), bool(arguments.onset_clip)))
    if arguments.json:
        with open(arguments.json, "w", encoding="utf-8") as stream:
            json.dump({"results": results}, stream, indent=1, allow_nan=False)
            stream.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
