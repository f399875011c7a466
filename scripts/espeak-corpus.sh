#!/usr/bin/env bash
# Makes a small synthetic speech corpus with espeak-ng (Debian: espeak-ng,
# sox) for trying out `vocode train`: N sentences in several voices, 22050 Hz
# 16-bit mono WAVs in DIR/wavs, an LJSpeech-style DIR/metadata.csv, and
# DIR/train.txt / DIR/val.txt filelists (every 20th clip held out).
#
#   scripts/espeak-corpus.sh DIR [N]
set -euo pipefail
dir=${1:?usage: espeak-corpus.sh DIR [N]}
n=${2:-300}
command -v espeak-ng >/dev/null && command -v sox >/dev/null || {
  echo "needs espeak-ng and sox: apt-get install -y espeak-ng sox" >&2; exit 1; }
mkdir -p "$dir/wavs"
: > "$dir/metadata.csv"; : > "$dir/train.txt"; : > "$dir/val.txt"
subjects=(the\ quick\ fox the\ old\ engineer a\ small\ robot my\ neighbour the\ tired\ pilot
  a\ curious\ child the\ river the\ orchestra our\ new\ server the\ weather\ report)
verbs=(jumps\ over crosses watches explains carries repairs follows describes
  remembers paints)
objects=(the\ lazy\ dog a\ wooden\ bridge seven\ green\ bottles the\ northern\ lights
  a\ heavy\ parcel the\ broken\ clock twelve\ quiet\ songs the\ harbour\ at\ dawn
  an\ empty\ station the\ final\ question)
tails=("" " before the sun goes down" " with great care" " for the second time today"
  ", and nobody notices" " while it rains" " in less than a minute")
voices=(en-us en-gb en-us+f3 en-gb+m3 en-us+m7 en-gb-x-rp)
RANDOM=7
for ((i = 0; i < n; i++)); do
  text="${subjects[RANDOM % ${#subjects[@]}]} ${verbs[RANDOM % ${#verbs[@]}]} ${objects[RANDOM % ${#objects[@]}]}${tails[RANDOM % ${#tails[@]}]}."
  text="${text^}"
  id=$(printf 'ES%04d' "$i")
  voice=${voices[RANDOM % ${#voices[@]}]}
  speed=$((140 + RANDOM % 50))
  espeak-ng -v "$voice" -s "$speed" -w "$dir/wavs/$id.tmp.wav" "$text"
  sox -q "$dir/wavs/$id.tmp.wav" -r 22050 -b 16 -c 1 "$dir/wavs/$id.wav" norm -3
  rm "$dir/wavs/$id.tmp.wav"
  echo "$id|$text|$text" >> "$dir/metadata.csv"
  if ((i % 20 == 19)); then echo "wavs/$id.wav" >> "$dir/val.txt"; else echo "wavs/$id.wav" >> "$dir/train.txt"; fi
done
echo "$n clips in $dir ($(du -sh "$dir/wavs" | cut -f1))"
