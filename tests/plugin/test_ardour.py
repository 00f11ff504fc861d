"""Both plugins in a headless Ardour 7 session (ardour7-lua, dummy backend).

ardour_session.lua creates a session with a mono and a stereo track and
runs the engine. It reads the latency Ardour uses for each plugin, loads a
preset that selects a custom model file and sets controls, among them the
mono plugin's Model port, which the file overrides. A third track, "fast",
has a mono plugin without a file whose Model port switches to the
low-latency model while the engine runs, so Ardour must change from 960
to 480 samples for it. Then the script saves,
reloads, reads the controls back and saves again. This script checks those
results and that the saved states of the first two plugins still name the
custom model file.

Usage: test_ardour.py MODEL_FILE   (LV2_PATH must reach the bundle)
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plugin_testlib import require  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
LATENCY = 960
LOW_LATENCY = 480

PRESET_MANIFEST = """\
@prefix lv2: <http://lv2plug.in/ns/lv2core#> .
@prefix pset: <http://lv2plug.in/ns/ext/presets#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
"""

PRESET = """
<{uri}>
	a pset:Preset ;
	lv2:appliesTo <urn:drsn-denoise:{kind}> ;
	rdfs:label "Custom model ({kind})" ;
	rdfs:seeAlso <presets.ttl> .
"""

PRESET_BODY = """
<{uri}>
	a pset:Preset ;
	lv2:appliesTo <urn:drsn-denoise:{kind}> ;
	lv2:port [
		lv2:symbol "limit" ;
		pset:value 12.0
	] ;
	state:state [
		<urn:drsn-denoise:model> <file://{model}>
	] .
"""


def write_preset_bundle(directory, model):
    """Write an LV2 bundle with one custom-model preset per plugin."""
    bundle = os.path.join(directory, "drsn-test-presets.lv2")
    os.makedirs(bundle)
    manifest = PRESET_MANIFEST
    body = PRESET_MANIFEST + \
        "@prefix state: <http://lv2plug.in/ns/ext/state#> .\n"
    uris = {}
    for kind in ("mono", "stereo"):
        uri = f"urn:drsn-denoise:test:custom-model-{kind}"
        uris[kind] = uri
        manifest += PRESET.format(uri=uri, kind=kind)
        body += PRESET_BODY.format(uri=uri, kind=kind, model=model)
    with open(os.path.join(bundle, "manifest.ttl"), "w") as out:
        out.write(manifest)
    with open(os.path.join(bundle, "presets.ttl"), "w") as out:
        out.write(body)
    return uris


def latest_saved_models(session_dir):
    """Return, per plugin, the model file its newest saved state names.

    Ardour keeps one folder per plugin under plugins/ and a numbered
    stateN folder per save; None stands for a state without a model.
    """
    models = []
    for plugin_dir in sorted(glob.glob(os.path.join(session_dir, "plugins",
                                                    "*"))):
        states = glob.glob(os.path.join(plugin_dir, "state*", "state.ttl"))
        newest = max(states, key=lambda path: int(
            os.path.basename(os.path.dirname(path))[len("state"):]))
        model = None
        with open(newest) as text:
            for line in text:
                if "<urn:drsn-denoise:model>" in line:
                    target = line.split("<")[2].split(">")[0]
                    model = os.path.join(os.path.dirname(newest), target)
        models.append(model)
    return models


def main():
    source_model = sys.argv[1]
    with tempfile.TemporaryDirectory() as work:
        model = os.path.join(work, "custom-model.drsn")
        shutil.copyfile(source_model, model)
        presets = write_preset_bundle(os.path.join(work, "lv2"), model)
        session_dir = os.path.join(work, "session")

        env = dict(os.environ)
        env["LV2_PATH"] = env["LV2_PATH"] + ":" + os.path.join(work, "lv2")
        env["HOME"] = os.path.join(work, "home")  # Ardour writes its config
        env["DRSN_SESSION_DIR"] = session_dir
        env["DRSN_MONO_PRESET"] = presets["mono"]
        env["DRSN_STEREO_PRESET"] = presets["stereo"]
        run = subprocess.run(
            [require("ardour7-lua"), os.path.join(HERE, "ardour_session.lua")],
            env=env, capture_output=True, text=True, timeout=300)
        output = run.stdout + run.stderr
        print(output)
        assert run.returncode == 0, "ardour7-lua failed"
        assert "FAIL" not in output
        assert "DONE" in output

        results = {}
        for line in run.stdout.splitlines():
            if line.startswith("RESULT "):
                _, key, value = line.split(" ", 2)
                results[key] = value

        expected = {
            "mono.latency": LATENCY, "stereo.latency": LATENCY,
            "mono.latency_port": LATENCY, "stereo.latency_port": LATENCY,
            "mono.reloaded_latency": LATENCY,
            "stereo.reloaded_latency": LATENCY,
            "mono.limit": 18, "mono.mix": 75, "mono.residual": 1,
            "stereo.limit": 42, "stereo.mix": 100, "stereo.residual": 0,
            "stereo.link": 0,
            # The model file wins over the mono plugin's Model port.
            "mono.model": 1, "mono.latency_after_model_port": LATENCY,
            "stereo.model": 0,
            "fast.latency_before": LATENCY,
            "fast.latency": LOW_LATENCY, "fast.latency_port": LOW_LATENCY,
            "fast.reloaded_latency": LOW_LATENCY, "fast.model": 1,
        }
        for key, value in expected.items():
            assert key in results, f"no result for {key}"
            assert float(results[key]) == value, (key, results[key], value)

        # The saved state names a link in the state folder that leads,
        # through the session's externals folder, to the model file. The
        # "fast" plugin uses a built-in model and saves no path.
        models = latest_saved_models(session_dir)
        print("saved models:", models)
        assert len(models) == 3, models
        assert models.count(None) == 1, models
        with open(model, "rb") as original:
            expected_bytes = original.read()
        for saved in filter(None, models):
            with open(saved, "rb") as copy:
                assert copy.read() == expected_bytes, saved
    print("Ardour test passed")


if __name__ == "__main__":
    main()
