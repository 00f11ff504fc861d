#!/usr/bin/python3
"""Training smoke test: a few steps on generated audio, export, then the C golden-vector check.

Usage: test_training_smoke.py GOLDEN_TEST_BINARY

Keeps train/ from rotting unnoticed: the corpus generator, the mixer, the loss, checkpointing,
resuming, BatchNorm folding and the model-file writer all run, and the C engine must reproduce
the exported model's activations within 1e-4, for the default band layout and another one.
"""

import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3"


def run(*args, env=None):
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, env=env)


def main():
    golden_test = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="drsn-smoke-") as tmp:
        corpus = os.path.join(tmp, "corpus")
        run(PYTHON, os.path.join(ROOT, "train", "make_test_corpus.py"), corpus, "--seconds", "1.0")
        train = [PYTHON, os.path.join(ROOT, "train", "train.py"), "--run", "smoke", "--data", tmp,
                 "--corpus", corpus, "--batch", "2", "--seconds", "0.5", "--checkpoint-every", "2",
                 "--validate-every", "2", "--val-batches", "1", "--threads", "1", "--recurrent", "8",
                 "--estoi-weight", "1"]
        run(*train, "--steps", "2")
        run(*train, "--steps", "4")          # resumes from the step-2 checkpoint
        model = os.path.join(tmp, "smoke.drsn")
        golden = os.path.join(tmp, "smoke-golden.bin")
        run(PYTHON, os.path.join(ROOT, "train", "export.py"), os.path.join(tmp, "runs", "smoke", "last.pt"),
            "--model", model, "--golden", golden, "--golden-frames", "16")
        env = dict(os.environ, DRSN_MODEL_PATH=model, DRSN_GOLDEN_PATH=golden)
        run(golden_test, env=env)

        # A second run, started from the first, with another band layout (one bin per band at
        # the bottom) and the pitch input. Half its examples get noise floors and half noise
        # that stops, half of those before the speech starts. Half of the others get noise that
        # starts late. Half start silent, half have speech from the first sample, and all lose
        # the engine's DC offset estimate. Over-suppression counts 6 times. Its per-band
        # weights are mapped to the new bands and its stem gains the pitch channel. The C
        # engine must follow the centres that the model file carries.
        centres = "0,50,100,150,200,300,500,1000,2000,4000,8000,20000"
        run(*train[:3], "smoke-bands", *train[4:], "--pitch", "--band-centres", centres, "--steps", "2",
            "--floor-share", "0.5", "--noise-stop-share", "0.5", "--noise-lead-share", "0.5",
            "--silence-lead-share", "0.5", "--dc-offsets", "--over-suppression-weight", "6",
            "--speech-start-share", "0.5", "--noise-start-share", "0.5",
            "--init-from", os.path.join(tmp, "runs", "smoke", "last.pt"))
        model = os.path.join(tmp, "smoke-bands.drsn")
        golden = os.path.join(tmp, "smoke-bands-golden.bin")
        run(PYTHON, os.path.join(ROOT, "train", "export.py"),
            os.path.join(tmp, "runs", "smoke-bands", "last.pt"),
            "--model", model, "--golden", golden, "--golden-frames", "16")
        env = dict(os.environ, DRSN_MODEL_PATH=model, DRSN_GOLDEN_PATH=golden)
        run(golden_test, env=env)

        # Out-of-range options stop the run before it starts, with a message that names them,
        # and leave no run folder behind.
        for option, value in (("--speech-start-share", "1.5"), ("--noise-start-share", "-0.1"),
                              ("--silence-lead-share", "2"), ("--over-suppression-weight", "0"),
                              ("--over-suppression-weight", "nan")):
            args = [*train[:3], "smoke-invalid", *train[4:], "--steps", "1", option, value]
            print("+", " ".join(args), flush=True)
            result = subprocess.run(args, capture_output=True, text=True)
            if result.returncode == 0 or f"invalid {option}" not in result.stderr:
                sys.exit(f"train.py accepted {option} {value}: {result.stderr}")
            if os.path.exists(os.path.join(tmp, "runs", "smoke-invalid")):
                sys.exit(f"train.py left a run folder after {option} {value}")


if __name__ == "__main__":
    main()
