#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora (fuzz/seeds/TARGET/). Run from the repository root
after `cargo build --release`; the audio seeds need ffmpeg. Seeds are kept small: libFuzzer
grows its own corpus (fuzz/corpus/, not committed) from them."""

import copy
import json
import os
import struct
import subprocess
import sys

import numpy as np

SEEDS = "fuzz/seeds"
BIN = "target/release/deepscreen"


def write(target, name, data):
    os.makedirs(f"{SEEDS}/{target}", exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(f"{SEEDS}/{target}/{name}", mode) as f:
        f.write(data)


def header(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return json.loads(b[8 : 8 + n])


def safetensors(config, tensors, dtype="F32"):
    """A model file: tensors (name -> array) + the config under the `deepscreen` key."""
    meta = {"__metadata__": {"deepscreen": json.dumps(config)}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        a = tensors[name].astype(np.float16 if dtype == "F16" else np.float32)
        raw = a.tobytes()
        meta[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(meta).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(blobs)


TINY = {
    "format": "deepscreen-model", "version": 1, "id": "tiny", "sample_rate": 16000,
    "window": {"seconds": 0.5, "hop_seconds": 0.25, "min_seconds": 0.1, "pad": "repeat"},
    "frontend": {"n_fft": 256, "hop_length": 128, "filterbank": {"kind": "mel", "n_filters": 16},
                 "log": {"kind": "ln"}, "normalize": "mean"},
    "layers": [
        {"type": "conv2d", "name": "c1", "out_channels": 4, "kernel": [3, 3], "padding": [1, 1],
         "batchnorm": True, "activation": "relu"},
        {"type": "max_pool2d", "kernel": [2, 2]},
        {"type": "global_avg_pool"},
        {"type": "linear", "name": "fc", "out_features": 1},
    ],
    "output": {"kind": "logit"},
    "calibration": {"scale": 1.0, "bias": 0.0}, "threshold": 0.5, "aggregation": "mean",
}


def tiny_tensors(rng):
    return {
        "c1.weight": rng.normal(0, 0.3, (4, 1, 3, 3)), "c1.bias": np.zeros(4),
        "c1.bn.weight": np.ones(4), "c1.bn.bias": np.zeros(4),
        "c1.bn.running_mean": np.zeros(4), "c1.bn.running_var": np.ones(4),
        "fc.weight": rng.normal(0, 0.3, (1, 4)), "fc.bias": np.zeros(1),
    }


def models():
    rng = np.random.default_rng(0)
    write("model_file", "tiny.safetensors", safetensors(TINY, tiny_tensors(rng)))
    write("model_file", "tiny-f16.safetensors", safetensors(TINY, tiny_tensors(rng), "F16"))
    # The embedded small model as it ships (the Whisper-based ones need the 40 MB encoder,
    # which costs the fuzzer a second per input).
    lcnn = open("models/speech-lcnn.safetensors", "rb").read()
    write("model_file", "speech-lcnn.safetensors", lcnn)
    # Its head alone, the rest shared from the embedded speech-lcnn (`shared_tensors`).
    n = struct.unpack("<Q", lcnn[:8])[0]
    head = json.loads(lcnn[8 : 8 + n])
    config = json.loads(head["__metadata__"]["deepscreen"])
    config["shared_tensors"] = {"from": "speech-lcnn", "prefix": "conv"}
    tensors = {}
    for name, t in head.items():
        if name != "__metadata__" and not name.startswith("conv"):
            a, b = t["data_offsets"]
            tensors[name] = np.frombuffer(lcnn[8 + n + a : 8 + n + b], dtype=np.float32).reshape(t["shape"])
    write("model_file", "lcnn-shared.safetensors", safetensors(config, tensors))
    # A fusion (no tensors): the music CNN with the speech LCNN (fast members; the embedded
    # `music` fuses the Whisper head, too slow here).
    fused = json.loads(header("models/music.safetensors")["__metadata__"]["deepscreen"])
    fused["fusion"]["members"] = [
        {"model": "music-cnn", "weight": 0.5},
        {"model": "speech-lcnn", "weight": 0.5},
    ]
    write("model_file", "fusion.safetensors", safetensors(fused, {}))

    write("model_config", "tiny.json", json.dumps(TINY))
    for name in ["music-cnn", "music-cnn-wb", "speech-lcnn", "speech-cnn", "music-whisper"]:
        config = json.loads(header(f"models/{name}.safetensors")["__metadata__"]["deepscreen"])
        config.pop("provenance", None)
        write("model_config", f"{name}.json", json.dumps(config))
        if "encoder" in config:
            # The same shape of model with a small encoder, so that random weights are cheap.
            small = copy.deepcopy(config)
            small.pop("shared_tensors", None)
            small["encoder"].update({"width": 32, "heads": 2, "layers": 2, "max_positions": 200})
            small["encoder"]["read"] = {"mix": [{"state": 1, "weight": 0.5}, {"state": 3, "weight": 0.5}]}
            small["window"] = {"seconds": 1.0, "hop_seconds": 1.0, "pad": "repeat"}
            small["layers"][0]["kernel"] = [1, 32]
            write("model_config", f"{name}-small-encoder.json", json.dumps(small))


def reports():
    """Real reports of `screen` (both formats, with an error row and segments), then torn and
    edited variants of them."""
    audio = f"{SEEDS}/decode"
    files = sorted(os.path.join(audio, f) for f in os.listdir(audio))[:4]
    files.append(f"{SEEDS}/does-not-exist.wav")
    out = "/tmp/deepscreen-seed-report"
    for ext, extra in [("jsonl", ["--segments"]), ("csv", [])]:
        path = f"{out}.{ext}"
        if os.path.exists(path):
            os.remove(path)
        model = f"{SEEDS}/model_file/tiny.safetensors"
        subprocess.run([BIN, "screen", "--backend", "cpu", "--model", model, "-o", path, *extra, *files],
                       check=False, stderr=subprocess.DEVNULL)
        data = open(path, "rb").read()
        write("report", f"screen.{ext}", data)
        write("report", f"torn.{ext}", data[: len(data) * 2 // 3])
        lines = data.split(b"\n")
        write("report", f"crlf.{ext}", b"\r\n".join(lines))
        write("report", f"duplicate.{ext}", data + b"\n".join(lines[-3:-1]) + b"\n")
    # A row whose path is not UTF-8 (path_hex carries the exact bytes).
    jsonl = open(f"{out}.jsonl", "rb").read().split(b"\n")[0]
    row = json.loads(jsonl)
    row["path"] = "caf\ufffd.mp3"
    row["path_hex"] = "636166ff2e6d7033"
    write("report", "path-hex.jsonl", json.dumps(row) + "\n")


def protocols():
    write("protocol", "in-the-wild.csv",
          "file,speaker,label\n0.wav,Alec Guinness,spoof\n1.wav,Alec Guinness,bona-fide\n")
    write("protocol", "asvspoof2019.txt",
          "LA_0079 LA_T_1138215 - - bonafide\nLA_0079 LA_T_1271820 - A01 spoof\n")
    write("protocol", "plain.csv",
          "path,label,attack,source\nreal/a.flac,real,,pkg-a\nfake/b.wav,fake,piper,pkg-b\n"
          "\"c, d.wav\",synthetic,\"x\"\"y\",\n")


if __name__ == "__main__":
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} missing: run cargo build --release first")
    models()
    reports()
    protocols()
