"""The deepscreen model in PyTorch, built from the same JSON config and safetensors file the
Rust engine reads (see README "Model format"). It is the reference the engine is checked
against (golden vectors) and the module the training recipe trains and exports.

Layout conventions match the engine: windows [B, L] -> spectra [B, frames, bins] ->
features [B, frames, F] -> image [B, 1, frames, F] -> classifier -> outputs [B, N].
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from safetensors import safe_open
from safetensors.torch import save_file

METADATA_KEY = "deepscreen"
BN_PARTS = ("weight", "bias", "running_mean", "running_var")


def _window(kind: str, win_length: int) -> torch.Tensor:
    if kind == "hann":
        return torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    if kind == "hamming":
        return torch.hamming_window(win_length, periodic=True, dtype=torch.float64)
    if kind == "rectangular":
        return torch.ones(win_length, dtype=torch.float64)
    raise ValueError(f"unknown window {kind!r}")


def activation(x: torch.Tensor, act) -> torch.Tensor:
    """A layer's fused activation, as the config names it."""
    if act in (None, "none"):
        return x
    if act == "relu":
        return F.relu(x)
    if act == "sigmoid":
        return torch.sigmoid(x)
    if act == "gelu":
        return F.gelu(x)  # the exact (erf) form, as the engine
    if isinstance(act, dict) and "leaky_relu" in act:
        return F.leaky_relu(x, act["leaky_relu"])
    raise ValueError(f"unknown activation {act!r}")


def parameter_free_layer(x: torch.Tensor, layer: dict) -> torch.Tensor:
    """The layers without weights (MFM, pooling, flatten); shared with the trainer."""
    t = layer["type"]
    if t == "mfm":
        half = x.shape[1] // 2
        return torch.maximum(x[:, :half], x[:, half:])
    if t == "max_pool2d":
        k = tuple(layer["kernel"])
        return F.max_pool2d(x, k, stride=tuple(layer.get("stride") or k), padding=tuple(layer.get("padding", [0, 0])))
    if t == "global_avg_pool":
        return x.mean(dim=(2, 3))
    if t == "global_max_pool":
        return x.amax(dim=(2, 3))
    if t == "flatten":
        return x.flatten(1)
    raise ValueError(f"unknown layer type {t!r}")


class DeepscreenModel(torch.nn.Module):
    """Forward pass of a deepscreen model config; parameters named as in the model file."""

    def __init__(self, config: dict, tensors: dict[str, torch.Tensor] | None = None):
        super().__init__()
        self.config = config
        fe = config["frontend"]
        self.n_fft = fe["n_fft"]
        self.win_length = fe.get("win_length") or self.n_fft
        self.hop = fe["hop_length"]
        self.center = fe.get("center", False)
        self.power = fe.get("power", 2.0)
        self.register_buffer("window", _window(fe.get("window", "hann"), self.win_length).float())
        sr = config["sample_rate"]
        fb = fe["filterbank"]
        n_freqs = self.n_fft // 2 + 1
        f_min = fb.get("f_min", 0.0)
        f_max = fb.get("f_max") or sr / 2
        self.bins = None
        if fb["kind"] == "bins":
            hz = sr / self.n_fft
            start = math.ceil(f_min / hz)
            end = min(math.floor(f_max / hz + 1e-9) + 1, n_freqs)
            self.bins = (start, end)
            width = end - start
        elif fb["kind"] == "mel":
            width = fb["n_filters"]
            self.register_buffer(
                "filterbank",
                AF.melscale_fbanks(n_freqs, f_min, f_max, width, sr, norm=None, mel_scale="htk").float(),
            )
        elif fb["kind"] == "linear":
            width = fb["n_filters"]
            self.register_buffer("filterbank", AF.linear_fbanks(n_freqs, f_min, f_max, width, sr).float())
        elif fb["kind"] == "custom":
            width = fb["n_filters"]
            self.register_buffer("filterbank", torch.zeros(n_freqs, width))
        else:
            raise ValueError(f"unknown filterbank {fb['kind']!r}")
        self.log = fe["log"]
        self.dct = None
        if fe.get("dct"):
            n = fe["dct"]["n_coeffs"]
            self.register_buffer("dct_basis", AF.create_dct(n, width, norm="ortho").float())
            self.dct = n
            width = n
        self.normalize = fe.get("normalize", "none")
        if self.normalize == "global":
            self.register_buffer("feat_mean", torch.zeros(width))
            self.register_buffer("feat_std", torch.ones(width))
        self.features_width = width
        self.params = torch.nn.ParameterDict()
        self.buffers_bn: dict[str, torch.Tensor] = {}
        if tensors is not None:
            self.load_tensors(tensors)

    # ---- weights ----
    def load_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, t in tensors.items():
            if name == "frontend.filterbank":
                self.filterbank = t.float()
            elif name == "frontend.mean":
                self.feat_mean = t.float()
            elif name == "frontend.std":
                self.feat_std = t.float()
            else:
                self.params[name.replace(".", "__")] = torch.nn.Parameter(t.float())

    def tensor(self, name: str) -> torch.Tensor:
        return self.params[name.replace(".", "__")]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        out = {k.replace("__", "."): v.detach().contiguous() for k, v in self.params.items()}
        if self.config["frontend"]["filterbank"]["kind"] == "custom":
            out["frontend.filterbank"] = self.filterbank.contiguous()
        if self.normalize == "global":
            out["frontend.mean"] = self.feat_mean.contiguous()
            out["frontend.std"] = self.feat_std.contiguous()
        return out

    # ---- forward ----
    def features(self, windows: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(
            windows,
            self.n_fft,
            hop_length=self.hop,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            pad_mode="reflect",
            return_complex=True,
        )  # [B, bins, frames]
        power = spec.abs().pow(self.power).transpose(1, 2)  # [B, frames, bins]
        if self.bins is not None:
            x = power[:, :, self.bins[0] : self.bins[1]]
        else:
            x = power @ self.filterbank
        eps = self.log.get("eps", 1e-6)
        kind = self.log["kind"]
        if kind == "ln":
            x = torch.log(x + eps)
        elif kind == "log10":
            x = torch.log10(x + eps)
        elif kind == "db":
            x = 10.0 * torch.log10(torch.clamp(x, min=eps))
        else:
            raise ValueError(f"unknown log {kind!r}")
        floor = self.log.get("floor_below_max")
        if floor is not None:  # relative to each window's largest value (the engine's RangeFloor)
            x = torch.maximum(x, x.amax(dim=(1, 2), keepdim=True) - floor)
        if self.dct is not None:
            x = x @ self.dct_basis
        if self.normalize in ("mean", "mean_var"):
            mean = x.mean(dim=1, keepdim=True)
            x = x - mean
            if self.normalize == "mean_var":
                var = (x * x).mean(dim=1, keepdim=True)
                x = x / torch.sqrt(var + 1e-5)
        elif self.normalize == "global":
            x = (x - self.feat_mean) / self.feat_std
        return x

    def _bn(self, x: torch.Tensor, prefix: str, eps: float) -> torch.Tensor:
        g, b, m, v = (self.tensor(prefix + p) for p in BN_PARTS)
        return F.batch_norm(x, m, v, g, b, training=False, eps=eps)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        x = features.unsqueeze(1)
        for layer in self.config["layers"]:
            t = layer["type"]
            if t == "conv2d":
                name = layer["name"]
                bias = self.tensor(name + ".bias") if layer.get("bias", True) else None
                x = F.conv2d(
                    x,
                    self.tensor(name + ".weight"),
                    bias,
                    stride=tuple(layer.get("stride", [1, 1])),
                    padding=tuple(layer.get("padding", [0, 0])),
                )
                if layer.get("batchnorm", False):
                    x = self._bn(x, name + ".bn.", layer.get("bn_eps") or 1e-5)
                x = activation(x, layer.get("activation", "none"))
            elif t == "batch_norm":
                x = self._bn(x, layer["name"] + ".", layer.get("eps") or 1e-5)
                x = activation(x, layer.get("activation", "none"))
            elif t == "linear":
                name = layer["name"]
                bias = self.tensor(name + ".bias") if layer.get("bias", True) else None
                x = activation(F.linear(x, self.tensor(name + ".weight"), bias), layer.get("activation", "none"))
            else:
                x = parameter_free_layer(x, layer)
        return x

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        """Uncalibrated 'synthetic' logit per window."""
        out = self.config["output"]
        if out["kind"] == "logit":
            return outputs[:, 0]
        p_bona = torch.softmax(outputs.double(), dim=1)[:, out.get("bona_fide_index", 0)]
        return torch.log((1 - p_bona) / p_bona).float()

    def scores(self, windows: torch.Tensor) -> torch.Tensor:
        cal = self.config.get("calibration", {"scale": 1.0, "bias": 0.0})
        z = self.logits(self.classify(self.features(windows)))
        return torch.sigmoid(cal["scale"] * z + cal["bias"])

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.scores(windows)


def load(path: str | Path) -> DeepscreenModel:
    with safe_open(str(path), framework="pt") as f:
        config = json.loads(f.metadata()[METADATA_KEY])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return DeepscreenModel(config, tensors).eval()


def save(model: DeepscreenModel, path: str | Path) -> None:
    save_file(model.state_tensors(), str(path), metadata={METADATA_KEY: json.dumps(model.config)})
