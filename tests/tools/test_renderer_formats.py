#!/usr/bin/python3
"""Tests of the sound file formats that drsn-denoise reads and writes.

Covers truncated and streamed (piped) inputs, short Ogg files, empty inputs
and the choice of the output container and subtype. The program under test
comes from DRSN_DENOISE, as in test_renderer.py.
"""

import os
import struct
import subprocess
import tempfile
import unittest

import numpy as np
import soundfile

from test_renderer import DRSN_DENOISE, noise_with_clicks, read_bytes, run

RATE_HZ = 48000


def write_bytes(path, data):
    with open(path, "wb") as stream:
        stream.write(data)


def sine(seconds, rate_hz=RATE_HZ):
    return 0.5 * np.sin(2 * np.pi * 440 * np.arange(int(seconds * rate_hz)) / rate_hz)


def riff_chunks(data):
    """Return the chunks of a RIFF WAV file as a list of (identifier, body)."""
    chunks, position = [], 12
    while position + 8 <= len(data):
        size = struct.unpack_from("<I", data, position + 4)[0]
        chunks.append((bytes(data[position:position + 4]), bytes(data[position + 8:position + 8 + size])))
        position += 8 + size + (size & 1)
    return chunks


def build_riff(chunks):
    """Join (identifier, body) pairs into a RIFF WAV file."""
    body = b"WAVE"
    for name, content in chunks:
        body += name + struct.pack("<I", len(content)) + content + b"\0" * (len(content) & 1)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ogg_page_offsets(data):
    return [i for i in range(len(data) - 3) if data[i:i + 4] == b"OggS"]


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class InputFormatTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)

    def path(self, name):
        return os.path.join(self.directory.name, name)

    def render(self, in_path, out_path, *options):
        return run(DRSN_DENOISE, *options, in_path, out_path)

    def assert_rendered_frames(self, in_path, frames):
        out_path = self.path("out_" + os.path.basename(in_path) + ".wav")
        result = self.render(in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(out_path).frames, frames)

    def assert_rejected_as_truncated(self, in_path):
        out_path = self.path("out.wav")
        result = self.render(in_path, out_path)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(os.path.basename(in_path), result.stderr)
        self.assertIn("truncated", result.stderr)
        self.assertFalse(os.path.exists(out_path))

    def test_short_ogg_is_accepted(self):
        for subtype in ("VORBIS", "OPUS"):
            for seconds in (1.0, 2.0):
                with self.subTest(subtype=subtype, seconds=seconds):
                    in_path = self.path(f"short_{subtype}_{seconds}.ogg")
                    soundfile.write(in_path, sine(seconds), RATE_HZ, format="OGG", subtype=subtype)
                    self.assert_rendered_frames(in_path, soundfile.info(in_path).frames)

    def test_own_ogg_output_is_accepted(self):
        wav_path = self.path("speech.wav")
        soundfile.write(wav_path, sine(1.0), RATE_HZ, subtype="PCM_16")
        for name in ("own.ogg", "own.opus"):
            with self.subTest(output=name):
                ogg_path = self.path(name)
                result = self.render(wav_path, ogg_path)
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assert_rendered_frames(ogg_path, RATE_HZ)

    def test_truncated_ogg_is_rejected(self):
        for subtype in ("VORBIS", "OPUS"):
            full_path = self.path(f"full_{subtype}.ogg")
            soundfile.write(full_path, sine(3.0), RATE_HZ, format="OGG", subtype=subtype)
            data = read_bytes(full_path)
            last_page = ogg_page_offsets(data)[-1]
            for name, length in (("inside_last_page", last_page + 40),
                                 ("nine_tenths", len(data) * 9 // 10)):
                with self.subTest(subtype=subtype, cut=name):
                    cut_path = self.path(f"cut_{subtype}_{name}.ogg")
                    write_bytes(cut_path, data[:length])
                    self.assert_rejected_as_truncated(cut_path)

    def test_truncated_files_are_rejected(self):
        for container in ("WAV", "AIFF", "AU", "W64", "RF64", "FLAC", "SVX"):
            with self.subTest(container=container):
                full_path = self.path(f"full.{container.lower()}")
                soundfile.write(full_path, sine(1.0), RATE_HZ, format=container, subtype="PCM_16")
                data = read_bytes(full_path)
                cut_path = self.path(f"cut.{container.lower()}")
                write_bytes(cut_path, data[: len(data) * 2 // 3])
                self.assert_rejected_as_truncated(cut_path)

    def streamed_copy(self, container, name, patch):
        """Write a 1 s file and let patch(data) put placeholder sizes in it."""
        full_path = self.path(f"full_{name}.{container.lower()}")
        soundfile.write(full_path, sine(1.0), RATE_HZ, format=container, subtype="PCM_16")
        data = bytearray(read_bytes(full_path))
        patch(data)
        streamed_path = self.path(f"streamed_{name}.{container.lower()}")
        write_bytes(streamed_path, bytes(data))
        return streamed_path

    def test_streamed_wav_is_accepted(self):
        # ffmpeg writes 0xFFFFFFFF to a pipe and sox 0x7FFFF000 (RIFF: +36).
        for name, riff_size, data_size in (("ffmpeg", 0xFFFFFFFF, 0xFFFFFFFF),
                                           ("sox", 0x7FFFF024, 0x7FFFF000)):
            def patch(data, riff_size=riff_size, data_size=data_size):
                data_chunk = data.index(b"data")
                struct.pack_into("<I", data, 4, riff_size)
                struct.pack_into("<I", data, data_chunk + 4, data_size)
            with self.subTest(writer=name):
                self.assert_rendered_frames(self.streamed_copy("WAV", name, patch), RATE_HZ)

    def test_streamed_aiff_is_accepted(self):
        # sox writes these sizes to a pipe; ffmpeg writes zeros.
        for name, form_size, ssnd_size, comm_frames in (("sox", 0x7F000050, 0x7F000008, 0x3F800000),
                                                        ("ffmpeg", 0, 0, 0)):
            def patch(data, form_size=form_size, ssnd_size=ssnd_size, comm_frames=comm_frames):
                struct.pack_into(">I", data, 4, form_size)
                struct.pack_into(">I", data, data.index(b"COMM") + 10, comm_frames)
                struct.pack_into(">I", data, data.index(b"SSND") + 4, ssnd_size)
            with self.subTest(writer=name):
                self.assert_rendered_frames(self.streamed_copy("AIFF", name, patch), RATE_HZ)

    def test_streamed_au_and_w64_are_accepted(self):
        def patch_au(data):
            struct.pack_into(">I", data, 8, 0xFFFFFFFF)

        def patch_w64(data):
            # ffmpeg's sizes for the riff and data chunks of a piped W64.
            struct.pack_into("<Q", data, 16, 0xFFFFFFFFFFFFFFFF)
            struct.pack_into("<Q", data, data.index(b"data\xf3\xac\xd3\x11") + 16, 0x7FFFFFFFFFFFFFFF)

        self.assert_rendered_frames(self.streamed_copy("AU", "au", patch_au), RATE_HZ)
        self.assert_rendered_frames(self.streamed_copy("W64", "w64", patch_w64), RATE_HZ)

    def test_rf64_with_zero_ds64_is_rejected(self):
        # ffmpeg leaves the ds64 sizes at zero when it writes RF64 to a pipe,
        # and libsndfile then reads no frames at all.
        def patch(data):
            ds64 = data.index(b"ds64")
            data[ds64 + 8:ds64 + 32] = bytes(24)

        in_path = self.streamed_copy("RF64", "rf64", patch)
        out_path = self.path("out.wav")
        result = self.render(in_path, out_path)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("reads no audio frames", result.stderr)
        self.assertFalse(os.path.exists(out_path))

    def test_unfinished_wav_is_rejected(self):
        # A writer that stops before it fills in the sizes leaves the data
        # chunk's size at zero, and libsndfile then reads no frames at all.
        # The float file's first sample, 0.20031849, is the bytes "J M>",
        # which look like a chunk identifier.
        for subtype, first in (("PCM_16", 0.0), ("FLOAT", 0.20031849)):
            with self.subTest(subtype=subtype):
                in_path = self.path(f"unfinished_{subtype}.wav")
                x = sine(1.0)
                x[0] = first
                soundfile.write(in_path, x, RATE_HZ, subtype=subtype)
                data = bytearray(read_bytes(in_path))
                struct.pack_into("<I", data, data.index(b"data") + 4, 0)
                write_bytes(in_path, bytes(data))
                out_path = self.path(f"out_{subtype}.wav")
                result = self.render(in_path, out_path)
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertIn("declares no audio data", result.stderr)
                sample_bytes = 2 if subtype == "PCM_16" else 4
                self.assertIn(f"{sample_bytes * RATE_HZ} more bytes", result.stderr)
                self.assertFalse(os.path.exists(out_path))

    def test_empty_wav_with_trailing_chunk_is_accepted(self):
        in_path = self.path("empty.wav")
        soundfile.write(in_path, np.zeros(0), RATE_HZ, subtype="PCM_16")
        data = bytearray(read_bytes(in_path))
        data += b"LIST" + struct.pack("<I", 4) + b"INFO"
        struct.pack_into("<I", data, 4, len(data) - 8)
        write_bytes(in_path, bytes(data))
        out_path = self.path("out.wav")
        result = self.render(in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(out_path).frames, 0)

    def test_dash_input_is_a_file(self):
        dash_path = self.path("-")
        soundfile.write(dash_path, sine(0.5), RATE_HZ, format="WAV", subtype="PCM_16")
        stdin_path = self.path("stdin.wav")
        soundfile.write(stdin_path, sine(1.0), RATE_HZ, subtype="PCM_16")
        # libsndfile reads standard input for the name "-", so give it other audio.
        with open(stdin_path, "rb") as stdin:
            result = subprocess.run([DRSN_DENOISE, "--", "-", "out.wav"], cwd=self.directory.name,
                                    stdin=stdin, capture_output=True, text=True, timeout=120,
                                    check=False)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(self.path("out.wav")).frames, RATE_HZ // 2)

    def test_empty_input_gives_empty_output(self):
        for container, subtype in (("WAV", "PCM_16"), ("AIFF", "PCM_24"), ("WAV", "FLOAT")):
            with self.subTest(container=container, subtype=subtype):
                in_path = self.path(f"empty_{subtype}.{container.lower()}")
                soundfile.write(in_path, np.zeros(0), RATE_HZ, format=container, subtype=subtype)
                out_path = self.path(f"out_{subtype}.{container.lower()}")
                result = self.render(in_path, out_path)
                self.assertEqual(result.returncode, 0, result.stderr)
                info = soundfile.info(out_path)
                self.assertEqual((info.format, info.subtype, info.frames), (container, subtype, 0))

    def test_empty_input_to_flac_or_opus_fails_clearly(self):
        # libsndfile writes a FLAC file without frames as zero bytes, and an
        # Ogg Opus file without frames that it cannot read back.
        in_path = self.path("empty.wav")
        soundfile.write(in_path, np.zeros(0), RATE_HZ, subtype="PCM_16")
        for name in ("out.flac", "out.opus"):
            with self.subTest(output=name):
                out_path = self.path(name)
                result = self.render(in_path, out_path)
                self.assertEqual(result.returncode, 1)
                self.assertIn("-F wav", result.stderr)
                self.assertFalse(os.path.exists(out_path))


@unittest.skipUnless(DRSN_DENOISE, "DRSN_DENOISE is not set")
class OutputFormatTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.input = self.path("speech.wav")
        soundfile.write(self.input, noise_with_clicks(RATE_HZ, 1, 1.0, [4000]), RATE_HZ, subtype="PCM_16")

    def path(self, name):
        return os.path.join(self.directory.name, name)

    def render_info(self, in_path, out_name, *options):
        out_path = self.path(out_name)
        result = run(DRSN_DENOISE, *options, in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        return soundfile.info(out_path)

    def test_broadcast_time_and_cues_are_kept(self):
        # A Broadcast WAV "bext" chunk of 602 bytes whose time reference is
        # sample 123456789, and a cue point at sample 12000.
        bext = bytearray(602)
        bext[0:10] = b"field take"
        struct.pack_into("<II", bext, 338, 123456789, 0)
        cue = struct.pack("<I", 1) + struct.pack("<II4sIII", 1, 12000, b"data", 0, 0, 12000)
        chunks = riff_chunks(read_bytes(self.input))
        data_index = [name for name, _ in chunks].index(b"data")
        chunks[data_index:data_index] = [(b"bext", bytes(bext)), (b"cue ", cue)]
        in_path = self.path("bwf.wav")
        write_bytes(in_path, build_riff(chunks))
        out_path = self.path("bwf-out.wav")
        result = run(DRSN_DENOISE, in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        out = dict(riff_chunks(read_bytes(out_path)))
        self.assertIn(b"bext", list(out))
        self.assertEqual(struct.unpack_from("<II", out[b"bext"], 338), (123456789, 0))
        self.assertEqual(out[b"bext"][:10], b"field take")
        self.assertIn(b"cue ", list(out))
        self.assertEqual(struct.unpack_from("<I", out[b"cue "], 0)[0], 1)
        self.assertEqual(struct.unpack_from("<I", out[b"cue "], 4 + 20)[0], 12000)

    def test_wavex_channel_mask_is_kept(self):
        # 5.1 (front left, right, centre, LFE, side left and right) is mask 0x60F.
        in_path = self.path("surround.wav")
        x = np.tile(noise_with_clicks(RATE_HZ, 1, 0.5, [4000]).reshape(-1, 1), (1, 6))
        soundfile.write(in_path, x, RATE_HZ, format="WAVEX", subtype="PCM_24")
        data = bytearray(read_bytes(in_path))
        fmt = data.index(b"fmt ") + 8
        struct.pack_into("<I", data, fmt + 20, 0x60F)
        write_bytes(in_path, bytes(data))
        out_path = self.path("surround-out.wav")
        result = run(DRSN_DENOISE, in_path, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(soundfile.info(out_path).format, "WAVEX")
        out_fmt = dict(riff_chunks(read_bytes(out_path)))[b"fmt "]
        self.assertEqual(struct.unpack_from("<I", out_fmt, 20)[0], 0x60F)

    def test_opus_extension_writes_ogg_opus(self):
        info = self.render_info(self.input, "speech.opus")
        self.assertEqual((info.format, info.subtype), ("OGG", "OPUS"))

    def test_opus_format_in_output_dir(self):
        out_directory = self.path("out")
        result = run(DRSN_DENOISE, "-F", "opus", "-o", out_directory, self.input)
        self.assertEqual(result.returncode, 0, result.stderr)
        info = soundfile.info(os.path.join(out_directory, "speech.opus"))
        self.assertEqual((info.format, info.subtype), ("OGG", "OPUS"))

    def test_mismatched_extension_warns(self):
        out_path = self.path("speech-out.wav")
        result = run(DRSN_DENOISE, "-F", "flac", self.input, out_path)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("warning: ", result.stderr)
        self.assertIn("rename it to .flac", result.stderr)
        self.assertEqual(soundfile.info(out_path).format, "FLAC")

    def test_unknown_extension_keeps_input_container(self):
        flac_input = self.path("speech.flac")
        soundfile.write(flac_input, noise_with_clicks(RATE_HZ, 1, 1.0, [4000]), RATE_HZ, subtype="PCM_16")
        info = self.render_info(flac_input, "speech.denoised")
        self.assertEqual((info.format, info.subtype), ("FLAC", "PCM_16"))

    def test_float_output_is_the_same_every_run(self):
        # libsndfile's PEAK chunk of float files records the time of writing, so the same
        # input gave different bytes from one second to the next.
        outputs = []
        for name in ("float-1.wav", "float-2.wav"):
            out_path = self.path(name)
            result = run(DRSN_DENOISE, "-S", "float", self.input, out_path)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(soundfile.info(out_path).subtype, "FLOAT")
            outputs.append(read_bytes(out_path))
        self.assertNotIn(b"PEAK", [name for name, _ in riff_chunks(outputs[0])])
        self.assertEqual(outputs[0], outputs[1])

    def test_pcm8_uses_container_8_bit_type(self):
        expected = {"wav": "PCM_U8", "w64": "PCM_U8", "rf64": "PCM_U8",
                    "aiff": "PCM_S8", "flac": "PCM_S8", "caf": "PCM_S8"}
        for extension, subtype in expected.items():
            with self.subTest(extension=extension):
                info = self.render_info(self.input, f"eight.{extension}", "-S", "pcm8")
                self.assertEqual(info.subtype, subtype)

    def test_zero_limit_exact_for_pcm(self):
        rng = np.random.default_rng(3)
        audio = np.clip(0.2 * rng.standard_normal(RATE_HZ), -1, 1)
        for subtype in ("PCM_16", "PCM_U8"):
            with self.subTest(subtype=subtype):
                in_path = self.path(f"noise_{subtype}.wav")
                soundfile.write(in_path, audio, RATE_HZ, subtype=subtype)
                out_path = self.path(f"out_{subtype}.wav")
                result = run(DRSN_DENOISE, "--limit", "0", in_path, out_path)
                self.assertEqual(result.returncode, 0, result.stderr)
                original, _ = soundfile.read(in_path, dtype="int16")
                processed, _ = soundfile.read(out_path, dtype="int16")
                self.assertEqual(int(np.count_nonzero(processed != original)), 0)

    def test_impossible_subtype_message(self):
        out_path = self.path("vorbis.wav")
        result = run(DRSN_DENOISE, "-S", "vorbis", self.input, out_path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("with 1 channel;", result.stderr)
        self.assertFalse(os.path.exists(out_path))

    def test_sd2_output_asks_for_other_format(self):
        sd2_input = self.path("speech.sd2")
        soundfile.write(sd2_input, noise_with_clicks(RATE_HZ, 1, 1.0, [4000]), RATE_HZ,
                        format="SD2", subtype="PCM_16")
        out_path = self.path("out.sd2")
        result = run(DRSN_DENOISE, sd2_input, out_path)
        self.assertEqual(result.returncode, 1)
        self.assertIn("SD2", result.stderr)
        self.assertIn("-F wav", result.stderr)
        self.assertFalse(os.path.exists(out_path))

        info = self.render_info(sd2_input, "out.wav")
        self.assertEqual((info.format, info.frames), ("WAV", RATE_HZ))


if __name__ == "__main__":
    unittest.main()
