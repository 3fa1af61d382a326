#!/usr/bin/env bash
# Peak memory of a render as the timeline grows: the same 1280x720 timeline shape (clips of
# real footage alternating, 1 s crossfades) at 1 minute and at 10 minutes. Memory must stay
# flat: the 10-minute peak within 10% of the 1-minute one. Usage: benches/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-media.sh >/dev/null
cargo build --release --quiet
work=target/memory
mkdir -p "$work"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 0700 "$XDG_RUNTIME_DIR"
fi

project() { # $1 = clips; each clip 61 s less its crossfade share, so N clips ~ N minutes
  python3 - "$1" <<'PY'
import json, sys
n = int(sys.argv[1])
media = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]
clips = [{"src": f"../../examples/media/{media[i % 3]}", "type": "video",
          "duration": 60 + (1 if i < n - 1 else 0) if n > 1 else 60} for i in range(n)]
print(json.dumps({"fps": 30, "resolution": {"width": 1280, "height": 720},
                  "transition": {"type": "crossfade", "duration": 1},
                  "audio": {"src": "../../examples/media/speech.wav"}, "clips": clips}))
PY
}

printf '| timeline | frames | wall s | peak RSS MiB |\n|---|---:|---:|---:|\n'
for minutes in 1 10; do
  project "$minutes" > "$work/project-$minutes.json"
  /usr/bin/time -f "%e %M" -o "$work/time-$minutes" ./target/release/render-node render \
    --preset ultrafast "$work/project-$minutes.json" -o "$work/out-$minutes.mp4" 2>/dev/null
  read -r wall kb < "$work/time-$minutes"
  frames=$(ffprobe -v error -select_streams v:0 -show_entries stream=nb_frames -of csv=p=0 \
    "$work/out-$minutes.mp4")
  printf '| %s min | %s | %s | %s |\n' "$minutes" "$frames" "$wall" "$((kb / 1024))"
done
