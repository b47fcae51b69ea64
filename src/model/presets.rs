//! Reference architectures (configs only, no weights). The JSON lives in `training/configs/` so
//! the training recipe and the engine share one definition; the embedded models were trained on
//! exactly these. Benchmarks, the demo and tests run them with random weights.

use super::config::ModelConfig;

fn parse(json: &str, id: &str) -> ModelConfig {
    let mut config: ModelConfig = serde_json::from_str(json).expect("preset configs are valid");
    config.id = id.to_string();
    config
}

/// Speech: 16 kHz, 4 s windows (2 s hop), log linear-frequency power spectrogram (257 bins,
/// per-window mean/variance normalised) and a small LCNN (max-feature-map) classifier, as in the
/// ASVspoof baselines. (An LFCC front-end was tried first: it missed vocoder resyntheses.)
pub fn speech_lcnn(id: &str) -> ModelConfig {
    parse(include_str!("../../training/configs/speech.json"), id)
}

/// Music: 44.1 kHz, 5 s windows, log-power STFT (n_fft 2048, hop 512) keeping bins up to
/// 16 kHz, and a plain CNN with pooling and global average pooling (Deezer's detector style).
pub fn music_cnn(id: &str) -> ModelConfig {
    parse(include_str!("../../training/configs/music.json"), id)
}
