"""Golden vectors for a Whisper-based detector (train_head.py's export): the float64 numpy
reference (deepscreen_train/whisper_reference.py: log-mel and encoder on the CTranslate2 weights) followed by the head in
float64 on the exported (F16) head weights, on the deterministic windows tests/golden.rs
rebuilds (deepscreen_train.golden_vectors.golden_windows).

    python training/whisper/golden_head.py data/whisper-base models/speech-whisper.safetensors \
        tests/golden/embedded_speech-whisper_io.safetensors

Stores `window_head` (first 64 samples of each window, to check the rebuild), the states the
head reads (final, or the model's weighted mix of layers) at every 4th position (`features_every_4th_frame`), the raw logits (`outputs`) and the
calibrated window scores (`scores`).
"""

import json
import os
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from deepscreen_train import ct2
from deepscreen_train import whisper_reference as reference
from deepscreen_train.golden_vectors import golden_windows


def head_forward(states: np.ndarray, config: dict, t: dict) -> float:
    """The engine's layer list on one window's states [positions, width] (float64)."""
    x = states[None]  # [C=1, H=positions, W=width]
    for layer in config["layers"]:
        kind = layer["type"]
        if kind == "conv2d":
            w, b = t[layer["name"] + ".weight"], t[layer["name"] + ".bias"]
            kh, kw = w.shape[2], w.shape[3]
            assert kh == 1 and kw == x.shape[2], "head convolutions span the whole width"
            x = np.einsum("oci,chi->oh", w[:, :, 0, :], x)[:, :, None] + b[:, None, None]
            if layer.get("activation") == "relu":
                x = np.maximum(x, 0.0)
        elif kind == "global_avg_pool":
            x = x.mean(axis=(1, 2))
        elif kind == "linear":
            x = t[layer["name"] + ".weight"] @ x + t[layer["name"] + ".bias"]
        else:
            raise ValueError(kind)
    return float(x[0])


def main():
    model_dir, model_path, out = sys.argv[1:4]
    _, variables = ct2.read(os.path.join(model_dir, "model.bin"))
    with safe_open(model_path, "np") as f:
        config = json.loads(f.metadata()["deepscreen"])
        head = {k: f.get_tensor(k).astype(np.float64) for k in f.keys() if k.startswith("head.")}
    n = round(config["window"]["seconds"] * config["sample_rate"])
    windows = golden_windows(2, n, config["sample_rate"], config["frontend"]["n_fft"])
    feats, logits = [], []
    read = config["encoder"].get("read", "final")
    for w in windows:
        mel = reference.log_mel(w.astype(np.float64))
        if isinstance(read, dict) and "mix" in read:
            # Σ weight · LayerNorm(state) (no gain or bias), states [stem, blocks…, final].
            every = reference.encode(mel, variables, all_layers=True)
            states = sum(t["weight"] * reference.layer_norm(every[t["state"]], 1.0, 0.0) for t in read["mix"])
        else:
            states = reference.encode(mel, variables)
        feats.append(states[::4])
        logits.append(head_forward(states, config, head))
    logits = np.array(logits)
    cal = config["calibration"]
    scores = 1 / (1 + np.exp(-(cal["scale"] * logits + cal["bias"])))
    save_file({
        "window_head": windows[:, :64].astype(np.float32),
        "features_every_4th_frame": np.stack(feats).astype(np.float32),
        "outputs": logits[:, None].astype(np.float32),
        "scores": scores.astype(np.float32),
    }, out, metadata={"model": config["id"], "reference": "training/deepscreen_train/whisper_reference.py (float64)"})
    print(f"wrote {out}: logits {logits.tolist()} scores {scores.tolist()}")


if __name__ == "__main__":
    main()
