#!/usr/bin/python3
"""Checks the narrowband speech option of train/prepare_data.py.

extract_queen must write every *.SB entry of a queen.1c file, and nothing else, as its own MP3
file, and reject a file that is not one. set_speech_shares must give a source the share of the
speech picks that sources.SPEECH_SHARE sets, and leave every other clip's weight alone.
"""

import os
import shutil
import sys
import tempfile
import unittest

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "train"))
import prepare_data  # noqa: E402
from drsn import sources  # noqa: E402

QUEEN_DIR = "usr/share/scummvm/flight-of-the-amazon-queen"


def queen_file(entries, compression=1):
    """Return the bytes of a queen.1c file that contains the (name, payload) entries."""
    header = b"QTBL" + b"CEM10\0" + b"\0\0" + bytes([compression]) + len(entries).to_bytes(2, "big")
    table, bodies = b"", b""
    offset = len(header) + 21 * len(entries)
    for name, payload in entries:
        table += name.encode("ascii").ljust(12, b"\0") + b"\x01"
        table += offset.to_bytes(4, "big") + len(payload).to_bytes(4, "big")
        bodies += payload
        offset += len(payload)
    return header + table + bodies


class ExtractQueenTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)
        os.makedirs(os.path.join(self.directory, "flight-of-the-amazon-queen", QUEEN_DIR))

    def write_queen(self, data):
        path = os.path.join(self.directory, "flight-of-the-amazon-queen", QUEEN_DIR, "queen.1c")
        with open(path, "wb") as f:
            f.write(data)

    def test_speech_entries_are_written(self):
        self.write_queen(queen_file([("020006J1.SB", b"first"), ("ROOM1.BBK", b"graphics"),
                                     ("JOE00001.SB", b"second line")]))
        prepare_data.extract_queen(self.directory)
        target = os.path.join(self.directory, "flight-of-the-amazon-queen-extracted")
        self.assertEqual(sorted(os.listdir(target)), ["020006J1.SB.mp3", "JOE00001.SB.mp3"])
        with open(os.path.join(target, "JOE00001.SB.mp3"), "rb") as f:
            self.assertEqual(f.read(), b"second line")

    def test_other_file_is_rejected(self):
        good = queen_file([("020006J1.SB", b"first")])
        for name, data in (("no MP3", queen_file([("020006J1.SB", b"first")], compression=0)),
                           ("short", b"QTBL"), ("cut table", good[:30])):
            with self.subTest(case=name):
                self.write_queen(data)
                with self.assertRaises(SystemExit) as raised:
                    prepare_data.extract_queen(self.directory)
                self.assertIn("queen.1c", str(raised.exception))
                self.assertFalse(os.path.exists(
                    os.path.join(self.directory, "flight-of-the-amazon-queen-extracted")))


class SpeechShareTest(unittest.TestCase):
    def test_share_of_picks(self):
        rng = np.random.default_rng(1)
        clips = [{"path": f"klettres-data/{i}.ogg", "samples": np.zeros(int(n), np.int16)}
                 for i, n in enumerate(rng.integers(20000, 200000, 50))]
        clips += [{"path": f"flight-of-the-amazon-queen-extracted/{i}.SB.mp3",
                   "samples": np.zeros(int(n), np.int16)}
                  for i, n in enumerate(rng.integers(10000, 100000, 200))]
        prepare_data.set_speech_shares(clips)
        weights = np.array([np.sqrt(len(c["samples"])) * c.get("pick_weight", 1.0) for c in clips])
        queen = np.array([sources.speech_source(c["path"]) == "flight-of-the-amazon-queen"
                          for c in clips])
        share = weights[queen].sum() / weights.sum()
        self.assertAlmostEqual(share, sources.SPEECH_SHARE["flight-of-the-amazon-queen"], places=4)
        self.assertFalse(any("pick_weight" in c for c, q in zip(clips, queen) if not q))

    def test_speakers(self):
        self.assertEqual(sources.speech_speaker("flight-of-the-amazon-queen-extracted/020006J1.SB.mp3"),
                         "fotaq:joe")
        self.assertEqual(sources.speech_speaker("flight-of-the-amazon-queen-extracted/020006P1.SB.mp3"),
                         "fotaq:others")
        self.assertEqual(sources.speech_split("fotaq:others"), "train")


if __name__ == "__main__":
    unittest.main()
