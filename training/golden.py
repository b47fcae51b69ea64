"""Writes the PyTorch golden vectors that pin the Rust engine's numerics (tests/golden.rs).

For each case: a small random-weight model file (config in the metadata, exactly what the
engine loads) and an I/O file with input windows, the PyTorch front-end features, the raw
classifier outputs and the calibrated scores.

    python training/golden.py --out tests/golden
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from deepscreen_train.torch_model import BN_PARTS, DeepscreenModel, save

BASE = {"format": "deepscreen-model", "version": 1}

CASES = {
    # mel + DCT + mean/var, centred Hamming STFT with win < n_fft, every layer type, softmax
    "lcnn_mel": {
        **BASE,
        "id": "golden-lcnn-mel",
        "sample_rate": 8000,
        "window": {"seconds": 0.25, "hop_seconds": 0.125},
        "frontend": {
            "n_fft": 64, "win_length": 48, "hop_length": 32, "window": "hamming", "center": True,
            "filterbank": {"kind": "mel", "n_filters": 20, "f_min": 50.0, "f_max": 3800.0},
            "log": {"kind": "ln", "eps": 1e-6}, "dct": {"n_coeffs": 12}, "normalize": "mean_var",
        },
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 8, "kernel": [3, 3], "padding": [1, 1], "batchnorm": True},
            {"type": "mfm"},
            {"type": "max_pool2d", "kernel": [2, 2], "padding": [1, 1]},
            {"type": "batch_norm", "name": "bn1", "activation": "relu"},
            {"type": "conv2d", "name": "c2", "out_channels": 6, "kernel": [3, 1], "stride": [2, 1], "bias": False,
             "activation": {"leaky_relu": 0.1}},
            {"type": "global_max_pool"},
            {"type": "batch_norm", "name": "bn2"},
            {"type": "linear", "name": "fc1", "out_features": 4, "activation": "sigmoid"},
            {"type": "mfm"},
            {"type": "linear", "name": "fc2", "out_features": 3},
        ],
        "output": {"kind": "softmax", "bona_fide_index": 1},
        "calibration": {"scale": 0.8, "bias": 0.3},
    },
    # linear spectrogram bins in dB, global normalisation, strided conv, flatten, logit
    "cnn_bins": {
        **BASE,
        "id": "golden-cnn-bins",
        "sample_rate": 16000,
        "window": {"seconds": 0.1, "hop_seconds": 0.1, "pad": "zeros"},
        "frontend": {
            "n_fft": 128, "hop_length": 40,
            "filterbank": {"kind": "bins", "f_min": 300.0, "f_max": 6000.0},
            "log": {"kind": "db", "eps": 1e-10}, "normalize": "global",
        },
        "layers": [
            {"type": "conv2d", "name": "conv", "out_channels": 4, "kernel": [5, 5], "stride": [2, 2], "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 3], "stride": [1, 2]},
            {"type": "flatten"},
            {"type": "linear", "name": "out", "out_features": 1},
        ],
        "output": {"kind": "logit"},
        "calibration": {"scale": 1.3, "bias": -0.2},
    },
    # LFCC: linear-triangular filters + log10 + DCT, 25 ms Hann in a 512-point FFT, 2-class softmax
    "lfcc": {
        **BASE,
        "id": "golden-lfcc",
        "sample_rate": 16000,
        "window": {"seconds": 0.5, "hop_seconds": 0.25},
        "frontend": {
            "n_fft": 512, "win_length": 400, "hop_length": 160, "window": "hann",
            "filterbank": {"kind": "linear", "n_filters": 20}, "log": {"kind": "log10", "eps": 1e-8},
            "dct": {"n_coeffs": 10}, "normalize": "mean",
        },
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 4, "kernel": [3, 3], "padding": [1, 1], "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "conv2d", "name": "c2", "out_channels": 6, "kernel": [3, 3], "padding": [1, 1], "batchnorm": True,
             "activation": "relu"},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "fc", "out_features": 2},
        ],
        "output": {"kind": "softmax", "bona_fide_index": 0},
        "calibration": {"scale": 1.0, "bias": 0.0},
    },
    # speech-cnn's front-end (bins in dB, mean per bin) with the floor relative to the window's
    # maximum (log.floor_below_max, data v3): 30 dB, so some of the noise bins are clipped
    "bins_floor": {
        **BASE,
        "id": "golden-bins-floor",
        "sample_rate": 16000,
        "window": {"seconds": 0.2, "hop_seconds": 0.1},
        "frontend": {
            "n_fft": 128, "win_length": 80, "hop_length": 32, "window": "hann",
            "filterbank": {"kind": "bins", "f_min": 0.0},
            "log": {"kind": "db", "eps": 1e-10, "floor_below_max": 30.0}, "normalize": "mean",
        },
        "layers": [
            {"type": "conv2d", "name": "c1", "out_channels": 4, "kernel": [3, 3], "padding": [1, 1], "batchnorm": True,
             "activation": "relu"},
            {"type": "max_pool2d", "kernel": [2, 2]},
            {"type": "global_avg_pool"},
            {"type": "linear", "name": "out", "out_features": 1},
        ],
        "output": {"kind": "logit"},
        "calibration": {"scale": 1.1, "bias": 0.1},
    },
}


def random_tensors(model: DeepscreenModel, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights of the right shapes, found by tracing one forward pass."""
    config = model.config
    shapes: dict[str, tuple[int, ...]] = {}
    x = model.features(torch.zeros(1, int(round(config["window"]["seconds"] * config["sample_rate"])))).unsqueeze(1)
    for layer in config["layers"]:
        t = layer["type"]
        if t == "conv2d":
            o, k = layer["out_channels"], layer["kernel"]
            shapes[layer["name"] + ".weight"] = (o, x.shape[1], k[0], k[1])
            if layer.get("bias", True):
                shapes[layer["name"] + ".bias"] = (o,)
            if layer.get("batchnorm"):
                for p in BN_PARTS:
                    shapes[f"{layer['name']}.bn.{p}"] = (o,)
            x = torch.nn.functional.conv2d(x, torch.zeros(o, x.shape[1], *k), stride=tuple(layer.get("stride", [1, 1])),
                                           padding=tuple(layer.get("padding", [0, 0])))
        elif t == "batch_norm":
            for p in BN_PARTS:
                shapes[f"{layer['name']}.{p}"] = (x.shape[1],)
        elif t == "mfm":
            x = x[:, : x.shape[1] // 2]
        elif t == "max_pool2d":
            k = tuple(layer["kernel"])
            x = torch.nn.functional.max_pool2d(x, k, stride=tuple(layer.get("stride") or k), padding=tuple(layer.get("padding", [0, 0])))
        elif t in ("global_avg_pool", "global_max_pool"):
            x = x.mean(dim=(2, 3))
        elif t == "flatten":
            x = x.flatten(1)
        elif t == "linear":
            shapes[layer["name"] + ".weight"] = (layer["out_features"], x.shape[1])
            if layer.get("bias", True):
                shapes[layer["name"] + ".bias"] = (layer["out_features"],)
            x = torch.zeros(x.shape[0], layer["out_features"])
    out = {}
    for name, shape in shapes.items():
        if name.endswith("running_var"):
            out[name] = torch.rand(shape, generator=gen) * 1.5 + 0.5
        elif name.endswith(".bn.weight") or (name.endswith(".weight") and len(shape) == 1):
            out[name] = torch.rand(shape, generator=gen) + 0.5
        elif len(shape) == 1:
            out[name] = (torch.rand(shape, generator=gen) - 0.5) * 0.6
        else:
            fan_in = 1
            for d in shape[1:]:
                fan_in *= d
            bound = (6.0 / fan_in) ** 0.5
            out[name] = (torch.rand(shape, generator=gen) * 2 - 1) * bound
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("tests/golden"))
    ap.add_argument("--case", nargs="*", help="only these cases (default: all)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, (case, config) in enumerate(CASES.items()):
        if args.case and case not in args.case:
            continue
        gen = torch.Generator().manual_seed(1000 + i)
        config = json.loads(json.dumps(config))
        config["provenance"] = {"made_by": "training/golden.py", "torch": torch.__version__, "weights": "random"}
        model = DeepscreenModel(config)
        tensors = random_tensors(model, gen)
        if config["frontend"]["normalize"] == "global":
            width = model.features_width
            tensors["frontend.mean"] = torch.randn(width, generator=gen) * 10 - 40
            tensors["frontend.std"] = torch.rand(width, generator=gen) * 10 + 10
        model.load_tensors(tensors)
        model.eval()
        length = int(round(config["window"]["seconds"] * config["sample_rate"]))
        count = 4
        t = torch.arange(length, dtype=torch.float64) / config["sample_rate"]
        freqs = torch.tensor([220.0, 555.0, 1234.0, 2500.0], dtype=torch.float64)[:count, None]
        windows = (0.4 * torch.sin(2 * torch.pi * freqs * t) + 0.05 * torch.randn(count, length, generator=gen, dtype=torch.float64)).float()
        with torch.inference_mode():
            features = model.features(windows)
            outputs = model.classify(features)
            scores = model.scores(windows)
        save(model, args.out / f"{case}.safetensors")
        save_file(
            {"windows": windows.contiguous(), "features": features.contiguous(), "outputs": outputs.contiguous(), "scores": scores.contiguous()},
            str(args.out / f"{case}_io.safetensors"),
            metadata={"torch": torch.__version__},
        )
        if "floor_below_max" in model.log:  # the same windows without the floor must differ
            floored_log = model.log
            model.log = {k: v for k, v in floored_log.items() if k != "floor_below_max"}
            with torch.inference_mode():
                unfloored = model.features(windows)
            model.log = floored_log
            assert not torch.allclose(features, unfloored), "the floor clips nothing: the case does not test it"
        print(f"{case}: features {tuple(features.shape)}, scores {scores.tolist()}")


if __name__ == "__main__":
    main()
