#!/usr/bin/python3
"""Write a copy of the corpus whose training noise leaves out some packages.

Usage: /usr/bin/python3 train/subset_corpus.py OUT_DIR --drop PACKAGE... [--data DIR]

The ablation runs in docs/model.md trained on the corpus as it was before five game packages
joined the noise. Dropping those packages' clips from the current training noise gives that
corpus back in the same order, except for the two clips that copied validation recordings,
which prepare_data.py now leaves out (771 clips instead of 773):

    /usr/bin/python3 train/subset_corpus.py ~/.cache/drsn-denoise/corpus-v1 \\
        --drop megaglest-data supertuxkart-data redeclipse-data 0ad-data-extracted widelands-data

The other splits and the typing bank are linked, not copied. Pass OUT_DIR to train.py with
--corpus.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from prepare_data import write_split  # noqa: E402
from train import default_data_dir  # noqa: E402

LINKED = ("train_speech", "val_speech", "val_noise", "eval_speech", "eval_noise")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--drop", nargs="+", required=True, metavar="PACKAGE",
                    help="packages (first path component) whose training noise clips to leave out")
    ap.add_argument("--data", default=default_data_dir())
    args = ap.parse_args()

    corpus = os.path.join(args.data, "corpus")
    with open(os.path.join(corpus, "train_noise.json")) as f:
        index = json.load(f)
    audio = np.load(os.path.join(corpus, "train_noise.npy"), mmap_mode="r")
    keep = [c for c in index if c["path"].split("/", 1)[0] not in args.drop]
    if len(keep) == len(index):
        sys.exit(f"subset_corpus.py: no training noise clip comes from {' '.join(args.drop)}")

    os.makedirs(args.out_dir, exist_ok=True)
    clips = []
    for c in keep:
        clip = {k: v for k, v in c.items() if k not in ("offset", "length")}
        clip["samples"] = audio[c["offset"]: c["offset"] + c["length"]]
        clips.append(clip)
    write_split(args.out_dir, "train_noise", clips)

    names = [f"{n}.{ext}" for n in LINKED for ext in ("npy", "json")] + ["typing_keys.npy"]
    for name in names:
        link = os.path.join(args.out_dir, name)
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(corpus, name)), link)
    print(f"kept {len(clips)} of {len(index)} training noise clips")


if __name__ == "__main__":
    main()
