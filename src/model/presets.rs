//! Reference architectures (configs only, no weights). Benchmarks, the demo and tests run them
//! with random weights; the training recipe fills them with trained ones.

use serde_json::json;

use super::config::ModelConfig;

fn parse(value: serde_json::Value) -> ModelConfig {
    serde_json::from_value(value).expect("preset configs are valid")
}

/// Speech: 16 kHz, 4 s windows (2 s hop), 60 linear-triangular filters → 40 cepstra (LFCC),
/// and a small LCNN (max-feature-map) classifier, as in the ASVspoof baselines.
pub fn speech_lcnn(id: &str) -> ModelConfig {
    parse(json!({
        "format": "deepscreen-model", "version": 1, "id": id,
        "sample_rate": 16000,
        "window": {"seconds": 4.0, "hop_seconds": 2.0},
        "frontend": {
            "n_fft": 512, "win_length": 400, "hop_length": 160, "window": "hann",
            "filterbank": {"kind": "linear", "n_filters": 60, "f_min": 0.0},
            "log": {"kind": "ln", "eps": 1e-6},
            "dct": {"n_coeffs": 40},
            "normalize": "mean_var"
        },
        "layers": [
            {"type": "conv2d", "name": "conv1", "out_channels": 32, "kernel": [5, 5], "padding": [2, 2]},
            {"type": "mfm"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "conv2d", "name": "conv2a", "out_channels": 32, "kernel": [1, 1]},
            {"type": "mfm"},
            {"type": "batch_norm", "name": "bn2"},
            {"type": "conv2d", "name": "conv2", "out_channels": 48, "kernel": [3, 3], "padding": [1, 1]},
            {"type": "mfm"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "batch_norm", "name": "bn3"},
            {"type": "conv2d", "name": "conv3a", "out_channels": 48, "kernel": [1, 1]},
            {"type": "mfm"},
            {"type": "conv2d", "name": "conv3", "out_channels": 64, "kernel": [3, 3], "padding": [1, 1], "batchnorm": true},
            {"type": "mfm"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc1", "out_features": 32},
            {"type": "mfm"},
            {"type": "linear", "name": "fc2", "out_features": 1}
        ],
        "output": {"kind": "logit"}
    }))
}

/// Music: 44.1 kHz, 5 s windows, log-power STFT (n_fft 2048, hop 512) keeping bins up to
/// 16 kHz, and a plain CNN with pooling and global average pooling (Deezer's detector style).
pub fn music_cnn(id: &str) -> ModelConfig {
    parse(json!({
        "format": "deepscreen-model", "version": 1, "id": id,
        "sample_rate": 44100,
        "window": {"seconds": 5.0, "hop_seconds": 5.0},
        "frontend": {
            "n_fft": 2048, "hop_length": 512, "window": "hann",
            "filterbank": {"kind": "bins", "f_min": 0.0, "f_max": 16000.0},
            "log": {"kind": "db", "eps": 1e-10},
            "normalize": "mean"
        },
        "layers": [
            {"type": "conv2d", "name": "conv1", "out_channels": 16, "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "conv2d", "name": "conv2", "out_channels": 32, "kernel": [3, 3], "padding": [1, 1], "batchnorm": true, "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "conv2d", "name": "conv3", "out_channels": 64, "kernel": [3, 3], "padding": [1, 1], "batchnorm": true, "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "conv2d", "name": "conv4", "out_channels": 64, "kernel": [3, 3], "padding": [1, 1], "activation": {"leaky_relu": 0.01}},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc", "out_features": 1}
        ],
        "output": {"kind": "logit"}
    }))
}
