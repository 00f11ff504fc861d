#!/bin/bash
# Validates the staged LV2 bundle with sord_validate against the LV2
# specification bundles (the ones without a shared library) in LV2DIR.
# Usage: validate_ttl.sh BUNDLE_DIR [LV2DIR]
set -euo pipefail

bundle=$1
lv2dir=${2:-}
if [ -z "$lv2dir" ]; then
  # lv2.pc names the directory only in newer releases; Debian's lv2-dev
  # 1.18 installs the specifications in /usr/lib/lv2.
  lv2dir=$(pkg-config --variable=lv2dir lv2 2>/dev/null || true)
  lv2dir=${lv2dir:-/usr/lib/lv2}
fi

if ! command -v sord_validate >/dev/null; then
  echo "sord_validate not found; install the Debian package sordi" >&2
  exit 1
fi

schemas=()
for spec in "$lv2dir"/*.lv2; do
  if compgen -G "$spec/*.so" >/dev/null; then
    continue  # a plugin bundle, not a specification
  fi
  schemas+=("$spec"/*.ttl)
done
if [ ${#schemas[@]} -lt 20 ]; then
  echo "found only ${#schemas[@]} schema files in $lv2dir; is lv2-dev installed?" >&2
  exit 1
fi

ours=("$bundle"/*.ttl)
echo "validating ${#ours[@]} files of $bundle against ${#schemas[@]} schema files"
sord_validate "${schemas[@]}" "${ours[@]}"
