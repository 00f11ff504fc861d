"""Layout of the LV2 bundle, staged in the build tree and as installed.

Checks:
- the staged bundle contains the module, manifest.ttl, drsn.ttl and the
  preset files, and nothing else (no object directory), so that copying
  the folder as it is installs the plugin;
- meson installs the same files into one folder: LV2DIR/drsn-denoise.lv2
  with -Dlv2dir, else PREFIX/lib/lv2/drsn-denoise.lv2, where hosts search
  even when libdir is a multiarch directory.

Usage: test_bundle_layout.py MESON BUILD_DIR STAGED_BUNDLE_DIR
"""

import json
import os
import subprocess
import sys

BUNDLE = "drsn-denoise.lv2"
EXPECTED = {"drsn.so", "manifest.ttl", "drsn.ttl", "gentle.ttl",
            "speech.ttl", "strong.ttl", "podcast.ttl", "low-latency.ttl"}


def introspect(meson, build_dir, what):
    result = subprocess.run([meson, "introspect", f"--{what}", build_dir],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main():
    meson, build_dir, staged = sys.argv[1:4]

    entries = set(os.listdir(staged))
    print(f"staged bundle {staged}: {sorted(entries)}")
    assert entries == EXPECTED, f"unexpected entries: {entries ^ EXPECTED}"
    for entry in entries:
        assert os.path.isfile(os.path.join(staged, entry)), entry

    options = {option["name"]: option["value"]
               for option in introspect(meson, build_dir, "buildoptions")}
    lv2dir = options["lv2dir"] or os.path.join(options["prefix"], "lib",
                                               "lv2")
    bundle_dir = os.path.join(lv2dir, BUNDLE)
    installed = [target for target in
                 introspect(meson, build_dir, "installed").values()
                 if f"/{BUNDLE}/" in target]
    print(f"installed bundle files: {sorted(installed)}")
    assert {os.path.dirname(path) for path in installed} == {bundle_dir}, \
        (installed, bundle_dir)
    assert {os.path.basename(path) for path in installed} == EXPECTED
    print("bundle layout test passed")


if __name__ == "__main__":
    main()
