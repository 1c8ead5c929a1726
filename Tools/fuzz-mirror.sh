#!/usr/bin/env bash
# Prints the folder to build the Fuzz/ package in. SwiftPM names a path dependency after its folder, so a clone in
# a folder named "fuzz" (any case) clashes with Fuzz/ itself ("product ... not found"); such a clone builds from a
# mirror of the sources under .build/fuzz-mirror/SutraGridEvents (mtimes kept, so builds stay incremental).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$root" | tr '[:upper:]' '[:lower:]')
if [ "$name" != "fuzz" ]; then
    echo "$root/Fuzz"
    exit 0
fi
mirror="$root/.build/fuzz-mirror/SutraGridEvents"
mkdir -p "$mirror/Fuzz"
rm -rf "$mirror/Sources" "$mirror/Tests" "$mirror/Tools" "$mirror/Fuzz/Targets"
(cd "$root" && tar -c Package.swift Sources Tests Tools Fuzz/Package.swift Fuzz/Targets) | tar -x -C "$mirror"
echo "$mirror/Fuzz"
