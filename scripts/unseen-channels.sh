#!/bin/bash
# Real recordings through channels the detectors never trained on (issue 29: the false alarms
# are old and telephone-band real recordings): each file of LIST goes through each channel with
# ffmpeg and back to PCM WAV at the channel's own rate (the channel's damage only: deepscreen
# decodes these WAVs as it would the originals), into OUT/<channel>/<package>/<name>.wav.
# The training chain (training/deepscreen_train/channel.py, training/data/prepare.py) has µ-law,
# A-law, 8-bit, IMA-ADPCM, GSM, low-bitrate MP3, AAC, Opus and Vorbis: G.726, G.723.1, Speex and
# MS-ADPCM are not in it; Opus at 8 kbit/s and AAC at 24 kbit/s are, as references.
#
#   bash scripts/unseen-channels.sh LIST OUT        # LIST: one real file per line
#   deepscreen screen OUT/<channel> --model speech -o OUT/<channel>.jsonl   # each channel
#   python3 scripts/unseen-channels-table.py OUT
#
# models/speech.md's LIST (60 files per held-out package; mawk's rand):
#   for p in asterisk-core-sounds-ru-wav fillets-ng-data-nl flight-of-the-amazon-queen klettres-data; do
#       find data/real/speech/$p -type f ! -name '.*' | sort |
#           awk 'BEGIN {srand(29)} {print rand() "\t" $0}' | sort | head -60 | cut -f2
#   done > LIST
# and the unprocessed files as the "clean" row: deepscreen screen --files-from LIST -o OUT/clean.jsonl
# Needs ffmpeg with libspeex, libopus and the native G.726 / G.723.1 / AAC / MS-ADPCM encoders.
set -euo pipefail
list=$1
out=$2
# name | encoder arguments (the coded file) | container extension
channels=(
    "g726-16k|-ar 8000 -ac 1 -c:a g726 -b:a 16k|wav"
    "g726-32k|-ar 8000 -ac 1 -c:a g726 -b:a 32k|wav"
    "g723-6k3|-ar 8000 -ac 1 -c:a g723_1 -b:a 6300|wav"
    "speex-nb-8k|-ar 8000 -ac 1 -c:a libspeex -b:a 8k|ogg"
    "opus-nb-8k|-ar 8000 -ac 1 -c:a libopus -b:a 8k|ogg"
    "aac-22k-24k|-ar 22050 -ac 1 -c:a aac -b:a 24k|m4a"
    "msadpcm-11k|-ar 11025 -ac 1 -c:a adpcm_ms|wav"
)
while IFS= read -r src; do
    [ -n "$src" ] || continue
    package=$(basename "$(dirname "$src")")
    name=$(basename "${src%.*}")
    for channel in "${channels[@]}"; do
        IFS='|' read -r cname args ext <<<"$channel"
        dst="$out/$cname/$package/$name.wav"
        [ -e "$dst" ] && continue
        mkdir -p "$(dirname "$dst")"
        coded=$(mktemp --suffix ".$ext")
        # shellcheck disable=SC2086
        if ffmpeg -nostdin -v error -y -i "$src" $args "$coded" &&
            ffmpeg -nostdin -v error -y -i "$coded" -c:a pcm_s16le "$dst.part.wav"; then
            mv "$dst.part.wav" "$dst"
        else
            echo "skipped: $src through $cname" >&2
            rm -f "$dst.part.wav"
        fi
        rm -f "$coded"
    done
done <"$list"
