#!/usr/bin/env bash
# Peak memory of a render as the timeline grows: the same 1280x720 timeline shape (20 s clips
# alternating real footage and a testsrc2 clip with a tone, 1 s crossfades, a background
# track) at 1 minute and at 10 minutes. Memory must stay flat: the 10-minute peak within
# 10% of the 1-minute one. Usage: benches/memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/fetch-media.sh >/dev/null
cargo build --release --quiet
command -v /usr/bin/time >/dev/null || apt-get install -y -qq --no-install-recommends time
work=target/memory
mkdir -p "$work"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "${XDG_RUNTIME_DIR}" ]; then
  export XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 0700 "$XDG_RUNTIME_DIR"
fi

tone="$work/testsrc2-720p-20s.mp4"
[ -f "$tone" ] || ffmpeg -v error -f lavfi -i testsrc2=size=1280x720:rate=30:duration=20 \
  -f lavfi -i sine=frequency=440:duration=20 -c:v libx264 -preset ultrafast -c:a aac "$tone"

project() { # $1 = minutes: three 20 s clips a minute (21 s but the last, for the crossfades)
  python3 - "$1" <<'PY'
import json, sys
n = int(sys.argv[1]) * 3
media = ["../../examples/media/bigbuckbunny.mp4", "testsrc2-720p-20s.mp4"]
clips = [{"src": media[i % 2], "type": "video", "duration": 21 if i < n - 1 else 20}
         for i in range(n)]
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
