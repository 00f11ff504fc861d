#!/usr/bin/python3
"""Build a second validation corpus from narrowband speech that no shipped model trained on.

Usage: /usr/bin/python3 train/prepare_nb_validation.py [--data DIR] [--clips N] [--jobs N]

The validation split of DATA/corpus has 3 speakers. This corpus replaces its speech with
N lines (default 800, drawn at random) of Flight of the Amazon Queen's voice acting: dozens of
English characters, as 11 kHz MP3 with a bandwidth of about 4.4 kHz. The noise recordings and
typing keys are those of DATA/corpus, linked. `select_checkpoint.py --corpus
DATA/corpus-nbval` then scores checkpoints on it. The band limit rewards removing noise above
4.4 kHz, so read its scores beside those of the usual split, not instead of them.
"""

import argparse
import os
import sys
from multiprocessing import Pool

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import prepare_data  # noqa: E402
from drsn import sources  # noqa: E402

PACKAGE = "flight-of-the-amazon-queen"
LINKED = ("val_noise.npy", "val_noise.json", "typing_keys.npy")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=prepare_data.default_data_dir())
    ap.add_argument("--clips", type=int, default=800)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    corpus = os.path.join(args.data, "corpus")
    missing = [name for name in LINKED if not os.path.exists(os.path.join(corpus, name))]
    if missing:
        sys.exit(f"prepare_nb_validation.py: {corpus} lacks {', '.join(missing)}; "
                 "run train/prepare_data.py first")
    pkg_root = prepare_data.fetch_packages(args.data, [PACKAGE])
    files = sorted(sources.find_audio(os.path.join(pkg_root, PACKAGE + "-extracted")))
    if not files:
        sys.exit(f"prepare_nb_validation.py: no speech clips found in {pkg_root}/{PACKAGE}-extracted")
    rng = np.random.default_rng(args.seed)
    picked = [files[i] for i in sorted(rng.choice(len(files), min(args.clips, len(files)), replace=False))]

    with Pool(args.jobs) as pool:
        loaded = pool.map(prepare_data.load_clip, [(f, "speech", pkg_root) for f in picked], chunksize=16)
    clips = []
    for clip, path in zip(loaded, picked):
        if "error" in clip or clip["floor_db"] > prepare_data.MAX_SPEECH_FLOOR_DB:
            continue
        clip["speaker"] = sources.speech_speaker(os.path.relpath(path, pkg_root))
        clips.append(clip)

    out_dir = os.path.join(args.data, "corpus-nbval")
    os.makedirs(out_dir, exist_ok=True)
    prepare_data.write_split(out_dir, "val_speech", clips)
    for name in LINKED:
        link = os.path.join(out_dir, name)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.join(os.path.abspath(corpus), name), link)
    print(f"{out_dir}: {len(clips)} of {len(picked)} clips kept", flush=True)


if __name__ == "__main__":
    main()
