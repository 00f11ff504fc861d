#!/usr/bin/python3
"""Tests of tools/evaluate.py on a small generated manifest.

The systems are small Python commands, so the test does not depend on a
trained model: "copy" returns the noisy input (improvement 0), "clean" writes
the clean file (the best possible result) and "shorten" drops a sample.
"""

import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np
import scipy.io.wavfile

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
EVALUATE = os.path.join(TOOLS, "evaluate.py")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_metrics import noise_at_snr, speech_like, white_noise  # noqa: E402

RATE_HZ = 16000
COPY = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])"
CLEAN = "import shutil, sys; shutil.copyfile(sys.argv[1].replace('noisy', 'clean'), sys.argv[2])"
SHORTEN = (
    "import sys, scipy.io.wavfile as w; r, d = w.read(sys.argv[1]); "
    "w.write(sys.argv[2], r, d[:-1])"
)


class EvaluateTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        rows = []
        for index, snr_db in enumerate((0.0, 0.0, 10.0)):
            clean = speech_like(RATE_HZ, seconds=2.0, seed=index)
            noisy = clean + noise_at_snr(clean, white_noise(len(clean), seed=10 + index), snr_db)
            for kind, signal in (("clean", clean), ("noisy", noisy)):
                name = f"{kind}_{index}.wav"
                scipy.io.wavfile.write(os.path.join(self.directory.name, name), RATE_HZ,
                                       (0.5 * signal).astype(np.float32))
            rows.append((f"pair{index}", snr_db, f"clean_{index}.wav", f"noisy_{index}.wav"))
        self.manifest = os.path.join(self.directory.name, "eval.csv")
        with open(self.manifest, "w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(("id", "snr_db", "clean", "noisy"))
            writer.writerows(rows)

    def evaluate(self, *systems):
        json_path = os.path.join(self.directory.name, "results.json")
        arguments = [sys.executable, EVALUATE, self.manifest, "--json", json_path]
        for system in systems:
            arguments += ["--system", system]
        result = subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)
        document = None
        if result.returncode == 0:
            with open(json_path, encoding="utf-8") as stream:
                document = json.load(stream)
        return result, document

    def test_table_and_json_cover_every_system(self):
        python = sys.executable
        result, document = self.evaluate(
            "noisy=noisy", f"copy={python} -c '{COPY}' {{in}} {{out}}",
            f"clean={python} -c \"{CLEAN}\" {{in}} {{out}}",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(len(document["results"]), 9)
        lines = result.stdout.splitlines()
        self.assertTrue(lines[0].startswith("| system | input SNR (dB) |"))
        # Per system: one row per SNR (0 and 10 dB) and one overall row.
        self.assertEqual(len(lines), 2 + 3 * 3)

        noisy = document["summary"]["noisy"]["all"]
        copy = document["summary"]["copy"]["all"]
        clean = document["summary"]["clean"]["all"]
        self.assertEqual(noisy["pairs"], 3)
        self.assertEqual(document["summary"]["noisy"]["by_snr"]["0"]["pairs"], 2)
        self.assertAlmostEqual(copy["si_sdr_improvement"], 0.0, places=9)
        self.assertAlmostEqual(copy["estoi_improvement"], 0.0, places=9)
        self.assertAlmostEqual(clean["estoi"], 1.0, places=6)
        self.assertGreater(clean["si_sdr_improvement"], 50.0)
        self.assertGreater(clean["estoi_improvement"], 0.1)

    def test_length_change_is_an_error(self):
        result, _ = self.evaluate(f"shorten={sys.executable} -c '{SHORTEN}' {{in}} {{out}}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("must keep the length", result.stderr)

    def test_failing_system_is_an_error(self):
        result, _ = self.evaluate(f"broken={sys.executable} -c 'raise SystemExit(3)' {{in}} {{out}}")
        self.assertEqual(result.returncode, 1)
        self.assertIn("exit status 3", result.stderr)

    def test_command_without_placeholders_is_rejected(self):
        result, _ = self.evaluate("odd=cp a b")
        self.assertEqual(result.returncode, 1)
        self.assertIn("{in} and {out}", result.stderr)

    def test_short_manifest_row_is_an_error(self):
        with open(self.manifest, "a", encoding="utf-8") as stream:
            stream.write("pair3,0\n")
        result, _ = self.evaluate(f"copy={sys.executable} -c '{COPY}' {{in}} {{out}}")
        self.assertEqual(result.returncode, 1)
        self.assertIn(f"{self.manifest}:5: no value for clean, noisy", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    unittest.main()
