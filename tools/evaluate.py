#!/usr/bin/python3
"""Run denoising systems over a set of clean/noisy pairs and score them.

The manifest is a CSV file with the columns id, snr_db, clean and noisy; the
paths are relative to the CSV file. A system is NAME=COMMAND, where COMMAND is
split like a shell command line (no shell runs it) and its words {in} and
{out} are replaced by the noisy file and the output file to write. The
command "noisy" scores the unprocessed input. Example:

    /usr/bin/python3 tools/evaluate.py eval.csv \\
        --system noisy=noisy \\
        --system 'drsn=build/tools/drsn-denoise -q -f {in} {out}' \\
        --system 'speexdsp=build/bench/speex-denoise {in} {out}' \\
        --json results.json

It prints a Markdown table with, per system and per input SNR, the mean
SI-SDR, its improvement over the noisy input, ESTOI, its improvement, and
STOI, and writes every pair's numbers to the JSON file.
"""

import argparse
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

import metrics

NOISY_SYSTEM = "noisy"


class EvaluationError(Exception):
    """A problem with the manifest, a system command or an audio file."""


def read_manifest(path):
    """Return the manifest rows with absolute paths and float SNRs."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            missing = {"id", "snr_db", "clean", "noisy"} - set(reader.fieldnames or ())
            if missing:
                raise EvaluationError(
                    f"{path}: missing column(s) {', '.join(sorted(missing))}; "
                    "expected id, snr_db, clean, noisy"
                )
            rows = []
            for line_number, row in enumerate(reader, start=2):
                short = [name for name in ("id", "snr_db", "clean", "noisy") if row.get(name) is None]
                if short:
                    raise EvaluationError(
                        f"{path}:{line_number}: no value for {', '.join(short)}; "
                        "each row needs id, snr_db, clean and noisy"
                    )
                try:
                    snr_db = float(row["snr_db"])
                except ValueError:
                    raise EvaluationError(
                        f"{path}:{line_number}: invalid snr_db {row['snr_db']!r}"
                    ) from None
                rows.append(
                    {
                        "id": row["id"],
                        "snr_db": snr_db,
                        "clean": os.path.join(directory, row["clean"]),
                        "noisy": os.path.join(directory, row["noisy"]),
                    }
                )
    except OSError as error:
        raise EvaluationError(f"cannot read manifest: {error}") from None
    if not rows:
        raise EvaluationError(f"{path}: the manifest lists no pairs")
    identifiers = [row["id"] for row in rows]
    if len(set(identifiers)) != len(identifiers):
        raise EvaluationError(f"{path}: the id column has duplicate values")
    return rows


def parse_system(text):
    """Return (name, command words) from NAME=COMMAND."""
    name, separator, command = text.partition("=")
    if not separator or not name or not command:
        raise EvaluationError(f"invalid --system {text!r}; expected NAME=COMMAND")
    words = shlex.split(command)
    if words != [NOISY_SYSTEM] and ("{in}" not in words or "{out}" not in words):
        raise EvaluationError(
            f"system {name}: the command needs the words {{in}} and {{out}}, "
            f"or is just '{NOISY_SYSTEM}'"
        )
    return name, words


def run_system(name, words, noisy_path, out_path):
    """Run one system on one file; return the output path and seconds taken."""
    if words == [NOISY_SYSTEM]:
        return noisy_path, 0.0
    substitutions = {"{in}": noisy_path, "{out}": out_path}
    command = [substitutions.get(word, word) for word in words]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise EvaluationError(
            f"system {name} failed with exit status {result.returncode} on "
            f"{noisy_path}: {result.stderr.strip()}"
        )
    return out_path, seconds


def score_pair(clean, clean_rate, processed_path):
    processed, processed_rate = metrics.read_mono(processed_path)
    if processed_rate != clean_rate:
        raise EvaluationError(
            f"{processed_path}: sample rate {processed_rate} Hz, expected {clean_rate} Hz"
        )
    if len(processed) != len(clean):
        raise EvaluationError(
            f"{processed_path}: {len(processed)} samples, but the clean file has "
            f"{len(clean)}; a system must keep the length"
        )
    return {
        "si_sdr": metrics.si_sdr(clean, processed),
        "stoi": metrics.stoi(clean, processed, clean_rate),
        "estoi": metrics.estoi(clean, processed, clean_rate),
    }


def evaluate(rows, systems, work_directory, progress):
    """Return one result dictionary per system and pair."""
    results = []
    for index, row in enumerate(rows):
        clean, clean_rate = metrics.read_mono(row["clean"])
        noisy_scores = score_pair(clean, clean_rate, row["noisy"])
        for name, words in systems:
            out_path = os.path.join(work_directory, name, f"{row['id']}.wav")
            os.makedirs(os.path.dirname(out_path), exist_ok=True)
            processed_path, seconds = run_system(name, words, row["noisy"], out_path)
            scores = (
                noisy_scores
                if processed_path == row["noisy"]
                else score_pair(clean, clean_rate, processed_path)
            )
            results.append(
                {
                    "id": row["id"],
                    "snr_db": row["snr_db"],
                    "system": name,
                    "seconds": seconds,
                    "audio_seconds": len(clean) / clean_rate,
                    "si_sdr": scores["si_sdr"],
                    "si_sdr_improvement": scores["si_sdr"] - noisy_scores["si_sdr"],
                    "estoi": scores["estoi"],
                    "estoi_improvement": scores["estoi"] - noisy_scores["estoi"],
                    "stoi": scores["stoi"],
                    "stoi_improvement": scores["stoi"] - noisy_scores["stoi"],
                }
            )
        if progress:
            print(f"\r{index + 1}/{len(rows)} pairs", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return results


SUMMARY_FIELDS = (
    "si_sdr",
    "si_sdr_improvement",
    "estoi",
    "estoi_improvement",
    "stoi",
    "stoi_improvement",
)


def summarise(results, system_names):
    """Return {system: {"by_snr": {snr: means}, "all": means}}."""
    summary = {}
    for name in system_names:
        own = [r for r in results if r["system"] == name]
        groups = {}
        for result in own:
            groups.setdefault(result["snr_db"], []).append(result)

        def means(group):
            values = {field: sum(r[field] for r in group) / len(group) for field in SUMMARY_FIELDS}
            values["pairs"] = len(group)
            return values

        summary[name] = {
            "by_snr": {snr: means(groups[snr]) for snr in sorted(groups)},
            "all": means(own),
        }
    return summary


def format_snr(snr_db):
    return f"{snr_db:g}"


def markdown_table(summary):
    lines = [
        "| system | input SNR (dB) | pairs | SI-SDR (dB) | SI-SDR improvement (dB) "
        "| ESTOI | ESTOI improvement | STOI |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def row(name, label, values):
        return (
            f"| {name} | {label} | {values['pairs']} | {values['si_sdr']:.2f} "
            f"| {values['si_sdr_improvement']:+.2f} | {values['estoi']:.3f} "
            f"| {values['estoi_improvement']:+.3f} | {values['stoi']:.3f} |"
        )

    for name, system_summary in summary.items():
        for snr_db, values in system_summary["by_snr"].items():
            lines.append(row(name, format_snr(snr_db), values))
        lines.append(row(f"**{name}**", "**all**", system_summary["all"]))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 on success, 1 when a system or a file failed, "
        "2 on an invalid command line.",
    )
    parser.add_argument("manifest", help="CSV file with columns id, snr_db, clean, noisy")
    parser.add_argument(
        "--system",
        action="append",
        required=True,
        metavar="NAME=COMMAND",
        help="a system to score; COMMAND uses {in} and {out}, or is 'noisy'",
    )
    parser.add_argument("--json", metavar="FILE", help="write per-file results here")
    parser.add_argument(
        "--work-dir",
        metavar="DIR",
        help="keep the processed files here (default: a temporary directory "
        "that is removed afterwards)",
    )
    parser.add_argument(
        "--max-pairs",
        type=int,
        metavar="N",
        help="score only the first N pairs of the manifest",
    )
    parser.add_argument("--quiet", action="store_true", help="do not show progress")
    arguments = parser.parse_args(argv)

    try:
        systems = [parse_system(text) for text in arguments.system]
        names = [name for name, _ in systems]
        if len(set(names)) != len(names):
            raise EvaluationError("two systems have the same name")
        rows = read_manifest(arguments.manifest)
        if arguments.max_pairs is not None:
            rows = rows[: max(arguments.max_pairs, 0)]
        progress = not arguments.quiet and sys.stderr.isatty()
        if arguments.work_dir:
            results = evaluate(rows, systems, arguments.work_dir, progress)
        else:
            with tempfile.TemporaryDirectory(prefix="drsn-evaluate-") as directory:
                results = evaluate(rows, systems, directory, progress)
    except (EvaluationError, ValueError, OSError) as error:
        print(f"evaluate.py: {error}", file=sys.stderr)
        return 1

    summary = summarise(results, names)
    print(markdown_table(summary))
    if arguments.json:
        document = {
            "manifest": os.path.abspath(arguments.manifest),
            "systems": {name: " ".join(shlex.quote(w) for w in words) for name, words in systems},
            "summary": {
                name: {
                    "all": values["all"],
                    "by_snr": {format_snr(snr): v for snr, v in values["by_snr"].items()},
                }
                for name, values in summary.items()
            },
            "results": results,
        }
        with open(arguments.json, "w", encoding="utf-8") as stream:
            json.dump(document, stream, indent=1, allow_nan=False)
            stream.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
