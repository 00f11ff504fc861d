#!/usr/bin/python3
"""Make tests/data/onset-speech.flac, the clean speech of the word-onset test.

Usage: /usr/bin/python3 train/make_onset_clip.py [--data DIR]

Isolated words and short sentences by six held-out evaluation speakers (never trained on) in
Slovenian, Greek, English, Czech and Russian, from Debian main packages that
train/prepare_data.py has already fetched and unpacked under DIR/pkg. Every recording is
decoded, mixed down to mono, resampled to 48 kHz and scaled to an active level of -26 dBFS by
the functions of train/prepare_data.py, so it is treated like the training speech. The
recordings are joined with 300 ms of digital silence between them. tests/data/README.md gives
the sources and licences.
"""

import argparse
import os
import sys

import numpy as np
import soundfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_data  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(ROOT, "tests", "data", "onset-speech.flac")
RATE_HZ = prepare_data.RATE_HZ
PAUSE_SECONDS = 0.3

KTUBERLING = "ktuberling-data/usr/share/ktuberling/sounds"
TUXPAINT = "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
KAJONGG = "kajongg/usr/share/kajongg/voices/female2"
KLETTRES = "klettres-data/usr/share/klettres/cs"
ASTERISK = "asterisk-core-sounds-ru-g722/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU"

# Paths relative to DIR/pkg, in the order they are joined. Keep this list and the table in
# tests/data/README.md the same.
RECORDINGS = [
    f"{KTUBERLING}/sl/ball.ogg",
    f"{KTUBERLING}/sl/coat.ogg",
    f"{KTUBERLING}/sl/egypt_camel.ogg",
    f"{KTUBERLING}/el/coat.ogg",
    f"{KTUBERLING}/el/ear.ogg",
    f"{KTUBERLING}/el/arrow.ogg",
    f"{TUXPAINT}/animals/birds/blackbird_desc_el.ogg",
    f"{TUXPAINT}/animals/birds/cuckoo_desc_el.ogg",
    f"{KAJONGG}/chow.ogg",
    f"{KAJONGG}/pung.ogg",
    f"{KAJONGG}/dangerousgame.ogg",
    f"{KLETTRES}/alpha/a-1.ogg",
    f"{KLETTRES}/syllab/ad-10.ogg",
    f"{ASTERISK}/vm-deleted.g722",
    f"{ASTERISK}/queue-callswaiting.g722",
]


def load(path):
    samples, rate_hz = prepare_data.decode(path)
    samples = prepare_data.resample(samples, rate_hz).astype(np.float64)
    level_db = prepare_data.active_level_db(prepare_data.frame_levels_db(samples))
    return samples * 10 ** ((prepare_data.SPEECH_LEVEL_DBFS - level_db) / 20)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=os.environ.get("DRSN_DATA", os.path.expanduser("~/.cache/drsn-denoise")),
                        help="data directory of train/prepare_data.py (default: $DRSN_DATA or ~/.cache/drsn-denoise)")
    arguments = parser.parse_args()
    package_root = os.path.join(arguments.data, "pkg")

    pause = np.zeros(int(PAUSE_SECONDS * RATE_HZ))
    parts = [pause]
    for relative_path in RECORDINGS:
        parts += [load(os.path.join(package_root, relative_path)), pause]
    clip = np.concatenate(parts)
    peak = np.max(np.abs(clip))
    if peak > 0.99:
        raise SystemExit(f"the joined clip peaks at {peak:.3f}, which would clip in 16-bit PCM")
    soundfile.write(OUTPUT, clip, RATE_HZ, subtype="PCM_16")
    print(f"wrote {OUTPUT}: {len(clip) / RATE_HZ:.1f} s")


if __name__ == "__main__":
    main()
