# Distribution encodings (what a catalog holds): held-out real speech and dev fakes, each as
# MP3 128k 44.1 kHz stereo, Ogg Vorbis q4 44.1 kHz, Opus 64k, FLAC 44.1 kHz 16-bit. Names follow
# compare.py's groups: real PACKAGE--ENCODING--NAME, fakes GENERATOR-ENCODING/dev/NAME.
set -e
cd /work/main
out=data/dist; mkdir -p $out/real; : > $out/real.list; : > $out/fake.list
declare -A ARGS=(
  [mp3-128k]="-ar 44100 -ac 2 -b:a 128k .mp3"
  [vorbis-q4]="-ar 44100 -ac 2 -c:a libvorbis -q:a 4 .ogg"
  [opus-64k]="-ar 48000 -ac 2 -c:a libopus -b:a 64k .opus"
  [flac]="-ar 44100 -ac 2 -sample_fmt s16 .flac"
)
enc() {  # SRC DEST-WITHOUT-EXT ENCODING LIST
  local a=(${ARGS[$3]}); local ext=${a[-1]}; unset 'a[-1]'
  ffmpeg -nostdin -loglevel error -y -i "$1" "${a[@]}" "$2$ext"
  echo "$2$ext" >> $4
}
for p in asterisk-core-sounds-ru-wav flight-of-the-amazon-queen fillets-ng-data-nl klettres-data; do
  find data/real/speech/$p -type f | sort | shuf -n 40 --random-source=<(yes) | while read f; do
    for e in "${!ARGS[@]}"; do enc "$f" "$out/real/$p--$e--$(basename "${f%.*}")" $e $out/real.list; done
  done
done
for g in data/fake/speech/*; do
  n=$(basename $g)
  find $g/dev -type f | sort | head -20 | while read f; do
    for e in "${!ARGS[@]}"; do
      mkdir -p $out/fake/$n-$e/dev; enc "$f" "$out/fake/$n-$e/dev/$(basename "${f%.*}")" $e $out/fake.list
    done
  done
done
wc -l $out/*.list
