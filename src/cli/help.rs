//! The long help texts of `--help` (examples, exit codes).

/// The exit codes, as `--help` states them.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  every input was screened (whatever the verdicts)
  1  the run finished, but some inputs failed; their rows carry an `error`
  2  fatal: bad arguments, unusable model or backend, or the report could not be written
     (or is locked by another run, already holds a report and neither --resume nor --force
     was given, is an input, or --resume found another format, model or threshold)
  130/143  stopped by SIGINT/SIGTERM: finished rows are kept; rerun with --resume"
    };
}
pub(crate) use exit_codes;

pub const SCREEN_EXAMPLES: &str = concat!(
    "Examples:
  deepscreen screen ~/catalog -o results.jsonl                 (music, the default model)
  deepscreen screen ~/interviews --model speech -o speech.jsonl
  find /data -name '*.flac' | deepscreen screen --files-from - --format csv
  deepscreen screen song.mp3 --segments                         (which windows look fake)
  deepscreen screen --files-from all.txt --shard 3/16 --resume -o part3.jsonl
  deepscreen screen ~/catalog --model my-model.safetensors      (a model you trained)

Directories are walked recursively (symbolic links followed, loops reported, not followed) and
files with an audio extension are picked up: wav flac mp3 ogg oga m4a mp4 m4b aac alac caf aif
aiff aifc mka mkv webm opus. Files named on the command line or in --files-from are screened
whatever their extension.

Each row holds: path, score (calibrated probability the audio is synthetic), verdict
(\"synthetic\" when score >= threshold, else \"bona-fide\"; \"no-signal\" with a null score when
the file is digital silence or quieter than -60 dBFS throughout), threshold (the one the verdict
used), max_window_score, mean_window_score,
windows, duration_s, sample_rate, channels, codec, container, model, backend, error, warnings,
and with --segments the per-window scores. A file that cannot be read gets a row with `error`
set; the run goes on.

The report format follows -o's extension (.csv, .jsonl/.json) unless --format says otherwise.
While a run writes a report it holds a lock on it: a second run on the same -o stops at once.
--resume continues a report only with the format, model and threshold that wrote it.

Arithmetic: f32 everywhere, except the CUDA backend on compute capability 8.0 and newer (TF32
tensor cores; DEEPSCREEN_CUDA_MATH=f32 keeps f32). DEEPSCREEN_CPU_MATH=bf16 (opt-in, CPUs with
AVX512-BF16) runs the CPU backend's linear layers and encoder convolutions on bf16 inputs: the
Whisper members about 1.5x faster, scores moved by up to about 5e-3 (BENCHMARKS.md).
DEEPSCREEN_WGPU_F16=1 (opt-in, adapters with f16) stages the wgpu backend's linear-layer GEMM
tiles in f16 (TF32-like rounding, f32 sums); DEEPSCREEN_WGPU_SUBGROUPS=0 turns off its subgroup
reductions (on where the adapter offers them; the sums come in another order). `deepscreen
devices` says which is in use.

",
    exit_codes!()
);

pub const REVIEW_HELP: &str = "Examples:
  deepscreen screen ~/catalog -o r.jsonl --segments && deepscreen review r.jsonl -o review.html
  deepscreen review r.csv -o review.html --top 50 --embed-audio
  deepscreen review r.jsonl -o review.html --protocol meta.csv   (labelled: adds DET and ROC)
  deepscreen screen ~/catalog -o r.jsonl --html review.html      (screen, then review)

The page is one file: open it in any browser, offline; nothing is fetched. The table holds every
row of the report (flagged first, highest score first): click a column to sort, type to filter,
choose a verdict; the view is kept in the page address (#sort=-score&q=mp3), so it can be shared.

For each of the top --top flagged files, review decodes the file again and shows: the score of
every window over time (the report's own with --segments; otherwise it scores them again), the
most suspicious window's spectrogram from the model's own front-end, how much that window's
score drops when each frequency band is removed (the band the model's evidence is in), and a
player: a link to the file relative to the page (keep them together), or with --embed-audio
the window itself inside the page (about 0.2 MB per speech file and 0.6 MB per music file, so
the page can be sent on alone). Re-screening needs the report's model: an embedded one is
found by its id, another must be given with --model.

Exit codes: 0 page written; 1 page written, but some flagged files could not be explained (each
named on standard error and in the page); 2 no page (unreadable report, model mismatch).";
