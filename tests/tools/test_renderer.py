#!/usr/bin/python3
"""End-to-end tests of the drsn-denoise renderer and the speex-denoise runner.

The programs under test come from the environment variables DRSN_DENOISE and
SPEEX_DENOISE (meson test sets them); a test whose program is not set is
skipped. Inputs are generated into a temporary directory for each test.
"""

import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest

import numpy as np
import scipy.signal
import soundfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import metrics  # noqa: E402

DRSN_DENOISE = os.environ.get("DRSN_DENOISE")
SPEEX_DENOISE = os.environ.get("SPEEX_DENOISE")


def noise_with_clicks(rate_hz, channels, seconds, click_samples, seed=0):
    """Return [frames, channels] of quiet noise with a 0.9 click per channel.

    Channel c gets its click at click_samples[c], so a swap of channels or a
    shift of one sample shows up in the peak positions.
    """
    rng = np.random.default_rng(seed)
    frames = int(rate_hz * seconds)
    audio = 0.003 * rng.standard_normal((frames, channels))
    for channel, position in enumerate(click_samples):
        audio[position, channel] = 0.9
    return audio


def run(program, *arguments):
    return subprocess.run(
        [program, *arguments], capture_output=True, text=True, timeout=120, check=False
    )


def hidden_temporaries(directory):
    return [name for name in os.listdir(directory) if name.startswith(".")]


def read_bytes(path):
    with open(path, "rb") as stream:
        return stream.read()


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class AlignmentTest(unittest.TestCase):
    CASES = [
        (rate_hz, channels, container)
        for rate_hz in (48000, 44100)
        for channels in (1, 2)
        for container in ("WAV", "FLAC")
    ]

    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)

    def write_input(self, rate_hz, channels, container):
        clicks = [int(1.2 * rate_hz) + 37 + 501 * c for c in range(channels)]
        audio = noise_with_clicks(rate_hz, channels, 2.0, clicks)
        subtype = "FLOAT" if container == "WAV" else "PCM_24"
        path = os.path.join(self.directory.name, f"in_{rate_hz}_{channels}.{container.lower()}")
        soundfile.write(path, audio, rate_hz, subtype=subtype, format=container)
        return path, clicks, subtype

    def render(self, in_path, *options):
        out_path = in_path.replace("in_", "out_")
        result = run(DRSN_DENOISE, "--force", *options, in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        return out_path

    def test_zero_limit_is_exact_passthrough(self):
        for rate_hz, channels, container in self.CASES:
            with self.subTest(rate_hz=rate_hz, channels=channels, container=container):
                in_path, clicks, subtype = self.write_input(rate_hz, channels, container)
                out_path = self.render(in_path, "--limit", "0")
                original, _ = soundfile.read(in_path, always_2d=True)
                processed, processed_rate = soundfile.read(out_path, always_2d=True)
                info = soundfile.info(out_path)
                self.assertEqual(processed_rate, rate_hz)
                self.assertEqual(info.format, container)
                self.assertEqual(info.subtype, subtype)
                self.assertEqual(processed.shape, original.shape)
                # Unity gains leave only the float rounding of the FFTs and,
                # for FLAC, one 24-bit step.
                self.assertLess(np.max(np.abs(processed - original)), 2e-5)
                for channel, position in enumerate(clicks):
                    self.assertEqual(int(np.argmax(np.abs(processed[:, channel]))), position)

    def test_default_limit_keeps_click_position(self):
        for rate_hz, channels, container in self.CASES:
            with self.subTest(rate_hz=rate_hz, channels=channels, container=container):
                in_path, clicks, _ = self.write_input(rate_hz, channels, container)
                out_path = self.render(in_path)
                original, _ = soundfile.read(in_path, always_2d=True)
                processed, _ = soundfile.read(out_path, always_2d=True)
                self.assertEqual(processed.shape, original.shape)
                for channel, position in enumerate(clicks):
                    self.assertEqual(int(np.argmax(np.abs(processed[:, channel]))), position)

    def test_low_latency_model_keeps_click_position(self):
        for rate_hz, channels, container in self.CASES:
            with self.subTest(rate_hz=rate_hz, channels=channels, container=container):
                in_path, clicks, _ = self.write_input(rate_hz, channels, container)
                out_path = self.render(in_path, "--model", "low-latency")
                original, _ = soundfile.read(in_path, always_2d=True)
                processed, _ = soundfile.read(out_path, always_2d=True)
                self.assertEqual(processed.shape, original.shape)
                for channel, position in enumerate(clicks):
                    self.assertEqual(int(np.argmax(np.abs(processed[:, channel]))), position)

    def test_unknown_model_name_fails(self):
        in_path, _, _ = self.write_input(48000, 1, "WAV")
        result = run(DRSN_DENOISE, "--model", "low-latency-x", in_path,
                     os.path.join(self.directory.name, "out.wav"))
        self.assertEqual(result.returncode, 1)
        self.assertIn("low-latency-x", result.stderr)

    def test_unlinked_stereo_keeps_click_position(self):
        in_path, clicks, _ = self.write_input(48000, 2, "WAV")
        out_path = self.render(in_path, "--no-link")
        processed, _ = soundfile.read(out_path, always_2d=True)
        for channel, position in enumerate(clicks):
            self.assertEqual(int(np.argmax(np.abs(processed[:, channel]))), position)

    def test_short_input_keeps_length(self):
        for frames in (1, 100, 959, 961, 4097):
            with self.subTest(frames=frames):
                path = os.path.join(self.directory.name, f"in_short_{frames}.wav")
                audio = np.linspace(-0.5, 0.5, frames)
                soundfile.write(path, audio, 48000, subtype="FLOAT")
                out_path = self.render(path, "--limit", "0")
                processed, _ = soundfile.read(out_path)
                self.assertEqual(len(np.atleast_1d(processed)), frames)
                self.assertLess(np.max(np.abs(np.atleast_1d(processed) - audio)), 1e-5)

    def test_integer_output_clips(self):
        path = os.path.join(self.directory.name, "in_loud.wav")
        rng = np.random.default_rng(1)
        soundfile.write(path, np.clip(rng.standard_normal(48000), -1, 1), 48000, subtype="PCM_16")
        out_path = self.render(path, "--limit", "0")
        self.assertEqual(soundfile.info(out_path).subtype, "PCM_16")
        original, _ = soundfile.read(path)
        processed, _ = soundfile.read(out_path)
        # A wrapped sample would flip sign next to a full-scale input sample.
        self.assertLess(np.max(np.abs(processed - original)), 1e-3)

    def test_out_of_range_input_warns(self):
        # A float file scaled like 16-bit integers: most samples exceed the clamp at 1000.
        path = os.path.join(self.directory.name, "in_int_scale.wav")
        rng = np.random.default_rng(2)
        soundfile.write(path, rng.standard_normal(48000) * 8000, 48000, subtype="FLOAT")
        out_path = path.replace("in_", "out_")
        result = run(DRSN_DENOISE, "--force", "-q", path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning:", result.stderr)
        self.assertIn("were replaced", result.stderr)

        quiet_path = os.path.join(self.directory.name, "in_normal.wav")
        soundfile.write(quiet_path, rng.standard_normal(48000) * 0.1, 48000, subtype="FLOAT")
        result = run(DRSN_DENOISE, "--force", "-q", quiet_path, quiet_path.replace("in_", "out_"))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn("warning:", result.stderr)

    def test_format_and_subtype_options(self):
        in_path, _, _ = self.write_input(48000, 1, "WAV")
        out_directory = os.path.join(self.directory.name, "converted")
        result = run(DRSN_DENOISE, "--format", "flac", "--subtype", "pcm16", "-o", out_directory, in_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        out_path = os.path.join(out_directory, "in_48000_1.flac")
        info = soundfile.info(out_path)
        self.assertEqual((info.format, info.subtype), ("FLAC", "PCM_16"))
        self.assertEqual(info.frames, soundfile.info(in_path).frames)

    def test_output_extension_picks_format(self):
        in_path, _, _ = self.write_input(48000, 1, "WAV")
        out_path = os.path.join(self.directory.name, "by_name.flac")
        result = run(DRSN_DENOISE, in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(out_path).format, "FLAC")

    def test_vorbis_to_wav_uses_float(self):
        in_path = os.path.join(self.directory.name, "in.ogg")
        soundfile.write(in_path, noise_with_clicks(48000, 1, 1.0, [9000]), 48000, format="OGG", subtype="VORBIS")
        out_path = os.path.join(self.directory.name, "from_vorbis.wav")
        result = run(DRSN_DENOISE, in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        info = soundfile.info(out_path)
        self.assertEqual((info.format, info.subtype), ("WAV", "FLOAT"))
        self.assertEqual(info.frames, soundfile.info(in_path).frames)

    def test_float_to_flac_uses_pcm24(self):
        in_path, _, _ = self.write_input(48000, 1, "WAV")
        out_path = os.path.join(self.directory.name, "fallback.flac")
        result = run(DRSN_DENOISE, "--format", "flac", in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(out_path).subtype, "PCM_24")


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class FileSafetyTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.input = self.path("speech.wav")
        soundfile.write(self.input, noise_with_clicks(48000, 1, 1.0, [4000]), 48000, subtype="PCM_16")
        self.input_bytes = read_bytes(self.input)

    def path(self, name):
        return os.path.join(self.directory.name, name)

    def assert_input_unchanged(self):
        self.assertEqual(read_bytes(self.input), self.input_bytes)
        self.assertEqual(hidden_temporaries(self.directory.name), [])

    def test_same_path_is_rejected(self):
        for options in ([], ["--force"]):
            with self.subTest(options=options):
                result = run(DRSN_DENOISE, *options, self.input, self.input)
                self.assertEqual(result.returncode, 1)
                self.assertIn("same file as input", result.stderr)
                self.assert_input_unchanged()

    def test_links_to_input_are_rejected(self):
        os.symlink(self.input, self.path("symbolic.wav"))
        os.link(self.input, self.path("hard.wav"))
        for name in ("symbolic.wav", "hard.wav"):
            with self.subTest(link=name):
                result = run(DRSN_DENOISE, "--force", self.input, self.path(name))
                self.assertEqual(result.returncode, 1)
                self.assertIn("same file as input", result.stderr)
                self.assert_input_unchanged()

    def test_output_directory_of_input_is_rejected(self):
        result = run(DRSN_DENOISE, "--force", "-o", self.directory.name, self.input)
        self.assertEqual(result.returncode, 1)
        self.assertIn("same file as input", result.stderr)
        self.assert_input_unchanged()

    def test_existing_output_needs_force(self):
        out_path = self.path("out.wav")
        with open(out_path, "wb") as stream:
            stream.write(b"keep me")
        result = run(DRSN_DENOISE, self.input, out_path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("--force", result.stderr)
        self.assertEqual(read_bytes(out_path), b"keep me")

        result = run(DRSN_DENOISE, "--force", self.input, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(out_path).frames, 48000)
        self.assert_input_unchanged()

    def test_failed_file_leaves_no_temporary(self):
        truncated = self.path("truncated.wav")
        with open(truncated, "wb") as stream:
            stream.write(self.input_bytes[: len(self.input_bytes) // 2])
        out_directory = self.path("out")
        result = run(DRSN_DENOISE, "-o", out_directory, truncated)
        self.assertEqual(result.returncode, 1)
        self.assertIn("truncated.wav", result.stderr)
        self.assertIn("truncated", result.stderr)
        self.assertEqual(os.listdir(out_directory), [])

    def test_bad_inputs_spare_other_files(self):
        bad = {
            "empty.wav": b"",
            "garbage.wav": b"this is not a sound file\n" * 20,
            "truncated.wav": self.input_bytes[: len(self.input_bytes) // 3],
        }
        for name, data in bad.items():
            with open(self.path(name), "wb") as stream:
                stream.write(data)
        good_copy = self.path("second.wav")
        with open(good_copy, "wb") as stream:
            stream.write(self.input_bytes)
        out_directory = self.path("out")
        inputs = [self.path("empty.wav"), self.input, self.path("garbage.wav"),
                  self.path("missing.wav"), self.path("truncated.wav"), good_copy]
        result = run(DRSN_DENOISE, "-o", out_directory, *inputs)

        self.assertEqual(result.returncode, 1)
        for name in ("empty.wav", "garbage.wav", "missing.wav", "truncated.wav"):
            with self.subTest(bad_input=name):
                matching = [line for line in result.stderr.splitlines() if name in line]
                self.assertEqual(len(matching), 1, result.stderr)
        self.assertIn("Format not recognised", result.stderr)
        self.assertIn("empty.wav: cannot open: the file is empty", result.stderr)
        self.assertEqual(sorted(os.listdir(out_directory)), ["second.wav", "speech.wav"])
        for name in ("second.wav", "speech.wav"):
            self.assertEqual(soundfile.info(os.path.join(out_directory, name)).frames, 48000)

    def test_duplicate_output_name_rejected(self):
        other_directory = self.path("other")
        os.mkdir(other_directory)
        twin = os.path.join(other_directory, "speech.wav")
        soundfile.write(twin, np.zeros(48000), 48000, subtype="PCM_16")
        out_directory = self.path("out")
        result = run(DRSN_DENOISE, "--force", "-o", out_directory, self.input, twin)
        self.assertEqual(result.returncode, 1)
        self.assertIn("already written", result.stderr)
        # The twin is silence, so any signal in the output comes from the first input.
        written, _ = soundfile.read(os.path.join(out_directory, "speech.wav"))
        self.assertGreater(np.max(np.abs(written)), 1e-3)

    def write_long_input(self):
        long_input = self.path("long.wav")
        rng = np.random.default_rng(2)
        soundfile.write(long_input, 0.1 * rng.standard_normal((48000 * 120, 1)), 48000, subtype="PCM_16")
        return long_input

    def start_and_wait_for_temporary(self, long_input, out_directory, preexec_fn=None):
        process = subprocess.Popen(
            [DRSN_DENOISE, "-o", out_directory, long_input],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=self.directory.name,
            preexec_fn=preexec_fn,
        )
        self.addCleanup(process.kill)
        deadline = time.monotonic() + 20.0
        while not os.listdir(out_directory) and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.002)
        self.assertTrue(os.listdir(out_directory), "no temporary file appeared")
        return process

    def test_interrupt_removes_temporary(self):
        long_input = self.write_long_input()
        out_directory = self.path("out")
        os.mkdir(out_directory)
        process = self.start_and_wait_for_temporary(long_input, out_directory)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
        self.assertEqual(process.returncode, -signal.SIGINT)
        self.assertEqual(os.listdir(out_directory), [])

    def test_terminating_signals_remove_temporary(self):
        long_input = self.write_long_input()

        numbers = (signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT, signal.SIGPIPE, signal.SIGUSR1,
                   signal.SIGUSR2, signal.SIGALRM, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGVTALRM,
                   signal.SIGPROF, signal.SIGRTMIN)

        def no_core_files():
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            # A suite started under nohup, or in the background by a shell without job control,
            # inherits SIGHUP or SIGQUIT ignored, and the renderer keeps an ignored signal
            # ignored (test_ignored_hangup_stays_ignored).
            for number in numbers:
                signal.signal(number, signal.SIG_DFL)

        for number in numbers:
            with self.subTest(signal=signal.Signals(number).name):
                out_directory = self.path(f"out_{number}")
                os.mkdir(out_directory)
                process = self.start_and_wait_for_temporary(long_input, out_directory, no_core_files)
                process.send_signal(number)
                process.communicate(timeout=30)
                self.assertEqual(process.returncode, -number)
                self.assertEqual(os.listdir(out_directory), [])

    def test_ignored_hangup_stays_ignored(self):
        long_input = self.write_long_input()
        out_directory = self.path("out")
        os.mkdir(out_directory)

        def ignore_hangup():
            signal.signal(signal.SIGHUP, signal.SIG_IGN)

        process = self.start_and_wait_for_temporary(long_input, out_directory, ignore_hangup)
        process.send_signal(signal.SIGHUP)
        process.communicate(timeout=60)
        self.assertEqual(process.returncode, 0)
        self.assertEqual(os.listdir(out_directory), ["long.wav"])

    def test_fifo_output_is_rejected(self):
        fifo = self.path("pipe.wav")
        os.mkfifo(fifo)
        result = run(DRSN_DENOISE, "--force", self.input, fifo)
        self.assertEqual(result.returncode, 1)
        self.assertIn("pipe.wav is a FIFO", result.stderr)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assert_input_unchanged()

    def test_fifo_in_output_dir_is_rejected(self):
        out_directory = self.path("out")
        os.mkdir(out_directory)
        fifo = os.path.join(out_directory, "speech.wav")
        os.mkfifo(fifo)
        result = run(DRSN_DENOISE, "--force", "-o", out_directory, self.input)
        self.assertEqual(result.returncode, 1)
        self.assertIn("speech.wav is a FIFO", result.stderr)
        self.assertTrue(stat.S_ISFIFO(os.lstat(fifo).st_mode))
        self.assertEqual(os.listdir(out_directory), ["speech.wav"])

    def test_force_keeps_permission_bits(self):
        for mode in (0o640, 0o604, 0o600, 0o755):
            with self.subTest(mode=oct(mode)):
                out_path = self.path(f"out_{mode:o}.wav")
                with open(out_path, "wb") as stream:
                    stream.write(b"old")
                os.chmod(out_path, mode)
                result = run(DRSN_DENOISE, "--force", self.input, out_path)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(stat.S_IMODE(os.stat(out_path).st_mode), mode)
                self.assertEqual(soundfile.info(out_path).frames, 48000)

    @unittest.skipUnless(os.geteuid() == 0, "only root can give a file to another user")
    def test_force_keeps_owner_as_root(self):
        out_path = self.path("owned.wav")
        with open(out_path, "wb") as stream:
            stream.write(b"old")
        os.chown(out_path, 12345, 23456)
        result = run(DRSN_DENOISE, "--force", self.input, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        out_stat = os.stat(out_path)
        self.assertEqual((out_stat.st_uid, out_stat.st_gid), (12345, 23456))

    def test_new_output_mode_follows_umask(self):
        for mask in (0o022, 0o077, 0o000):
            with self.subTest(umask=oct(mask)):
                out_path = self.path(f"new_{mask:o}.wav")
                result = subprocess.run([DRSN_DENOISE, self.input, out_path], capture_output=True,
                                        text=True, timeout=120, check=False,
                                        preexec_fn=lambda mask=mask: os.umask(mask))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(stat.S_IMODE(os.stat(out_path).st_mode), 0o666 & ~mask)

    def test_long_output_names_work(self):
        for length in (248, 250, 255):
            with self.subTest(length=length):
                name = "n" * (length - len(".wav")) + ".wav"
                result = run(DRSN_DENOISE, self.input, self.path(name))
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertEqual(soundfile.info(self.path(name)).frames, 48000)
                self.assert_input_unchanged()


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class CommandLineTest(unittest.TestCase):
    def test_usage_errors_exit_with_2(self):
        for arguments in ([], ["only-one.wav"], ["a.wav", "b.wav", "c.wav"], ["--limit", "abc", "a", "b"],
                          ["--limit", "101", "a", "b"], ["--format", "xyz", "a", "b"],
                          ["--subtype", "pcm12", "a", "b"], ["--no-such-option"], ["-o", "dir"],
                          ["-o", "", "a.wav"], ["a.wav", ""]):
            with self.subTest(arguments=arguments):
                result = run(DRSN_DENOISE, *arguments)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn("--help", result.stderr)

    def test_help_lists_exit_status(self):
        result = run(DRSN_DENOISE, "--help")
        self.assertEqual(result.returncode, 0)
        self.assertIn("Exit status", result.stdout)
        self.assertIn("--limit", result.stdout)

    def test_help_fits_80_columns(self):
        result = run(DRSN_DENOISE, "--help")
        self.assertEqual(result.returncode, 0)
        for line in result.stdout.splitlines():
            with self.subTest(line=line):
                self.assertLessEqual(len(line), 80)

    def test_help_states_container_rule(self):
        result = run(DRSN_DENOISE, "--help")
        text = " ".join(result.stdout.split())
        self.assertIn("It keeps the input's container unless -F is given or OUT's extension names "
                      "another container from the -F list; an unrecognised extension keeps the "
                      "input's container.", text)
        self.assertNotIn("unchanged", text)

    def test_version(self):
        result = run(DRSN_DENOISE, "--version")
        self.assertEqual(result.returncode, 0)
        self.assertTrue(result.stdout.startswith("drsn-denoise "))

    def test_missing_model_exits_with_1(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "in.wav")
            soundfile.write(path, np.zeros(4800), 48000)
            result = run(DRSN_DENOISE, "--model", os.path.join(directory, "none.drsn"),
                         path, os.path.join(directory, "out.wav"))
            self.assertEqual(result.returncode, 1)
            self.assertIn("none.drsn", result.stderr)
            self.assertFalse(os.path.exists(os.path.join(directory, "out.wav")))

    def test_bad_model_is_named_once(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "in.wav")
            soundfile.write(path, np.zeros(4800), 48000)
            model = os.path.join(directory, "bad.drsn")
            with open(model, "wb") as stream:
                stream.write(b"not a model at all")
            result = run(DRSN_DENOISE, "--model", model, path, os.path.join(directory, "out.wav"))
            self.assertEqual(result.returncode, 1)
            self.assertEqual(result.stderr.count("bad.drsn"), 1, result.stderr)
            self.assertEqual(result.stderr.count("model"), 1, result.stderr)

    def test_directories_are_named_as_such(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "in.wav")
            soundfile.write(path, np.zeros(4800), 48000)
            result = run(DRSN_DENOISE, "--model", directory, path, os.path.join(directory, "out.wav"))
            self.assertEqual(result.returncode, 1)
            self.assertIn("is a directory", result.stderr)

            result = run(DRSN_DENOISE, directory, os.path.join(directory, "out.wav"))
            self.assertEqual(result.returncode, 1)
            self.assertIn(f"{directory}: is a directory", result.stderr)
            self.assertEqual(os.listdir(directory), ["in.wav"])

    def test_channel_limit(self):
        with tempfile.TemporaryDirectory() as directory:
            eight = os.path.join(directory, "eight.wav")
            nine = os.path.join(directory, "nine.wav")
            soundfile.write(eight, noise_with_clicks(48000, 8, 0.5, [1000 + 100 * c for c in range(8)]), 48000)
            soundfile.write(nine, np.zeros((4800, 9)), 48000)
            out_directory = os.path.join(directory, "out")
            result = run(DRSN_DENOISE, "-o", out_directory, nine, eight)
            self.assertEqual(result.returncode, 1)
            self.assertIn("nine.wav: 9 channels are not supported", result.stderr)
            self.assertEqual(os.listdir(out_directory), ["eight.wav"])
            self.assertEqual(soundfile.info(os.path.join(out_directory, "eight.wav")).channels, 8)

    def test_unsupported_rate_names_file(self):
        for name, rate_hz in (("low.wav", 4000), ("high.wav", 1000000)):
            with self.subTest(rate_hz=rate_hz), tempfile.TemporaryDirectory() as directory:
                path = os.path.join(directory, name)
                soundfile.write(path, np.zeros(4000), rate_hz)
                result = run(DRSN_DENOISE, path, os.path.join(directory, "out.wav"))
                self.assertEqual(result.returncode, 1)
                self.assertIn(name, result.stderr)
                self.assertIn(f"{rate_hz} Hz", result.stderr)
                self.assertNotIn("engine: engine", result.stderr)
                self.assertEqual(sorted(os.listdir(directory)), [name])


@unittest.skipUnless(SPEEX_DENOISE, "SPEEX_DENOISE is not set")
class SpeexRunnerTest(unittest.TestCase):
    def test_keeps_length_and_click_position(self):
        with tempfile.TemporaryDirectory() as directory:
            for rate_hz in (48000, 44100, 16000):
                with self.subTest(rate_hz=rate_hz):
                    click = int(1.1 * rate_hz) + 13
                    in_path = os.path.join(directory, f"in_{rate_hz}.wav")
                    out_path = os.path.join(directory, f"out_{rate_hz}.wav")
                    audio = noise_with_clicks(rate_hz, 1, 2.0, [click])[:, 0]
                    soundfile.write(in_path, audio, rate_hz, subtype="FLOAT")
                    result = run(SPEEX_DENOISE, in_path, out_path)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    processed, _ = soundfile.read(out_path)
                    self.assertEqual(len(processed), len(audio))
                    self.assertEqual(int(np.argmax(np.abs(processed))), click)

    def test_rejects_input_as_output(self):
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "in.wav")
            soundfile.write(path, np.zeros(4800), 48000)
            before = read_bytes(path)
            result = run(SPEEX_DENOISE, "--force", path, path)
            self.assertEqual(result.returncode, 1)
            self.assertEqual(read_bytes(path), before)


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class LowRateTest(unittest.TestCase):
    """Speech in noise at 8 and 16 kHz is denoised almost as well as at 48 kHz.

    At these rates the model's top bands lie above the Nyquist frequency, and the engine fills
    them with a roll-off. Without it the output at 8 kHz scored 8.5 dB worse than the input.
    """

    CLIP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                        "onset-speech.flac")

    def improvement(self, directory, speech, noisy, rate_hz):
        """Return the SI-SDR improvement in dB of the renderer's output of noisy over speech."""
        source = os.path.join(directory, f"noisy-{rate_hz}.wav")
        output = os.path.join(directory, f"out-{rate_hz}.wav")
        soundfile.write(source, noisy, rate_hz, subtype="FLOAT")
        result = run(DRSN_DENOISE, "-q", source, output)
        self.assertEqual(result.returncode, 0, result.stderr)
        out, _ = soundfile.read(output, dtype="float64")
        return metrics.si_sdr(speech, out) - metrics.si_sdr(speech, noisy)

    def test_low_rates_match_48k(self):
        speech, rate_hz = soundfile.read(self.CLIP, dtype="float64")
        self.assertEqual(rate_hz, 48000)
        speech = speech[: 8 * rate_hz]
        # Noise tilted to low frequencies by a one-pole low-pass, 5 dB below the speech, made at
        # 48 kHz and resampled with it.
        rng = np.random.default_rng(3)
        noise = scipy.signal.lfilter([1.0], [1.0, -0.95], rng.standard_normal(len(speech)))
        noise *= np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2)) * 10 ** (-5 / 20)
        with tempfile.TemporaryDirectory() as directory:
            reference = self.improvement(directory, speech, speech + noise, 48000)
            for rate in (8000, 16000):
                low = scipy.signal.resample_poly(speech, 1, 48000 // rate)
                low_noisy = scipy.signal.resample_poly(speech + noise, 1, 48000 // rate)
                gained = self.improvement(directory, low, low_noisy, rate)
                print(f"{rate} Hz: SI-SDR improvement {gained:+.2f} dB, 48 kHz {reference:+.2f} dB")
                self.assertGreater(gained, 3.0)
                self.assertGreater(gained, reference - 2.0)


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class SilentStartTest(unittest.TestCase):
    """Noisy speech after digital silence is denoised as well as without the silence.

    A stream starts silent before its source is live, and a file can too. Only the clean-only
    training crops started silent, so the models learned to pass much of the noise that follows
    a silent start. On this speech in white noise the default model gains 11.5 dB after 0.2 s of
    silence instead of 12.7 dB. The low-latency model gains 7.3 dB after 1 s instead of 11.9 dB,
    and 6.5 dB instead of 10.9 dB on noisy speech that follows other noisy speech after a 1 s gap.
    """

    CLIP = LowRateTest.CLIP

    def gained(self, directory, name, speech, noisy, lead, model):
        """Return the SI-SDR improvement of the output of noisy after lead zeros, over speech."""
        source = os.path.join(directory, f"{name}-in.wav")
        output = os.path.join(directory, f"{name}-out.wav")
        soundfile.write(source, np.concatenate([np.zeros(lead), noisy]), 48000, subtype="FLOAT")
        result = run(DRSN_DENOISE, "-q", "--model", model, source, output)
        self.assertEqual(result.returncode, 0, result.stderr)
        out, _ = soundfile.read(output, dtype="float64")
        return metrics.si_sdr(speech, out[lead:]) - metrics.si_sdr(speech, noisy)

    # NOTE: both shipped models fail this (docs/model.md, Silent starts), until a model trained
    # with train.py --silence-lead-share replaces them. Remove the decorator then: an unexpected
    # success fails the run.
    @unittest.expectedFailure
    def test_silent_start_keeps_denoising(self):
        speech, rate_hz = soundfile.read(self.CLIP, dtype="float64")
        self.assertEqual(rate_hz, 48000)
        speech = speech[: 6 * rate_hz]
        rng = np.random.default_rng(4)
        noise = rng.standard_normal(len(speech))
        noise *= np.sqrt(np.mean(speech ** 2) / np.mean(noise ** 2)) * 10 ** (-5 / 20)
        with tempfile.TemporaryDirectory() as directory:
            for model in ("default", "low-latency"):
                plain = self.gained(directory, f"{model}-plain", speech, speech + noise, 0, model)
                for lead in (9600 + 123, 48000 + 77):
                    after = self.gained(directory, f"{model}-{lead}", speech, speech + noise, lead, model)
                    print(f"{model}: SI-SDR improvement {plain:+.2f} dB, after {lead} zeros {after:+.2f} dB")
                    self.assertGreater(after, plain - 1.0)

    # NOTE: the low-latency model fails this (docs/model.md, Silent starts). Remove the decorator
    # when a retrained model passes it.
    @unittest.expectedFailure
    def test_gap_keeps_denoising(self):
        speech, rate_hz = soundfile.read(self.CLIP, dtype="float64")
        first, second = speech[: 6 * rate_hz], speech[6 * rate_hz: 12 * rate_hz]
        rng = np.random.default_rng(5)
        noisy = []
        for part in (first, second):
            noise = rng.standard_normal(len(part))
            noisy.append(part + noise * np.sqrt(np.mean(part ** 2) / np.mean(noise ** 2)) * 10 ** (-5 / 20))
        with tempfile.TemporaryDirectory() as directory:
            for model in ("default", "low-latency"):
                for gap in (0, 48000 + 77):
                    signal = np.concatenate([noisy[0], np.zeros(gap), noisy[1]])
                    lead = len(noisy[0]) + gap
                    source = os.path.join(directory, f"{model}-{gap}-in.wav")
                    output = os.path.join(directory, f"{model}-{gap}-out.wav")
                    soundfile.write(source, signal, 48000, subtype="FLOAT")
                    result = run(DRSN_DENOISE, "-q", "--model", model, source, output)
                    self.assertEqual(result.returncode, 0, result.stderr)
                    out, _ = soundfile.read(output, dtype="float64")
                    gained = metrics.si_sdr(second, out[lead:]) - metrics.si_sdr(second, noisy[1])
                    print(f"{model}: second part after a gap of {gap} zeros {gained:+.2f} dB")
                    if gap == 0:
                        plain = gained
                    else:
                        self.assertGreater(gained, plain - 1.0)


if __name__ == "__main__":
    unittest.main()
