"""finetune_top.py: the adapted top blocks start as the frozen encoder (checked against a float64
numpy Whisper block), merging the adapters changes no output, and the exported model carries
the merged weights and nothing else changed."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "whisper"))
from finetune_top import ADAPTED, Detector, TopBlocks, init_head  # noqa: E402
from train_head import Head, export  # noqa: E402

from deepscreen_train import whisper_reference as ref  # noqa: E402

WIDTH, HEADS, LAYERS, MLP = 16, 2, 3, 64


def encoder(rng) -> dict[str, np.ndarray]:
    t = {"encoder.final_norm.weight": 1 + rng.normal(0, 0.1, WIDTH), "encoder.final_norm.bias": rng.normal(0, 0.1, WIDTH)}
    for i in range(LAYERS):
        p = f"encoder.blocks.{i}."
        for norm in ("attn_norm", "mlp_norm"):
            t[p + norm + ".weight"] = 1 + rng.normal(0, 0.1, WIDTH)
            t[p + norm + ".bias"] = rng.normal(0, 0.1, WIDTH)
        for name, (o, i_) in {"qkv": (3 * WIDTH, WIDTH), "attn_out": (WIDTH, WIDTH), "mlp_in": (MLP, WIDTH),
                              "mlp_out": (WIDTH, MLP)}.items():
            t[p + name + ".weight"] = rng.normal(0, 1 / np.sqrt(i_), (o, i_))
            t[p + name + ".bias"] = rng.normal(0, 0.1, o)
    return {k: v.astype(np.float16) for k, v in t.items()}


def encoder_file(t: dict[str, np.ndarray], folder: Path) -> Path:
    """`t` as a deepscreen encoder file (convert.py's layout)."""
    config = {"format": "deepscreen-model", "version": 1, "id": "tiny", "provenance": {},
              "encoder": {"kind": "whisper", "width": WIDTH, "heads": HEADS, "layers": LAYERS, "read": "final"}}
    path = folder / "encoder.safetensors"
    save_file(t, str(path), metadata={"deepscreen": json.dumps(config)})
    return path


def reference_top(t: dict[str, np.ndarray], x: np.ndarray, first: int) -> np.ndarray:
    """Blocks first.. and the final LayerNorm on one window [T, width], float64."""
    g = lambda k: t[k].astype(np.float64)  # noqa: E731
    x = x.astype(np.float64)
    for i in range(first, LAYERS):
        p = f"encoder.blocks.{i}."
        h = ref.layer_norm(x, g(p + "attn_norm.weight"), g(p + "attn_norm.bias"))
        x = x + ref.attention(h, g(p + "qkv.weight"), g(p + "qkv.bias"), g(p + "attn_out.weight"), g(p + "attn_out.bias"), HEADS)
        h = ref.layer_norm(x, g(p + "mlp_norm.weight"), g(p + "mlp_norm.bias"))
        x = x + ref.gelu(h @ g(p + "mlp_in.weight").T + g(p + "mlp_in.bias")) @ g(p + "mlp_out.weight").T + g(p + "mlp_out.bias")
    return ref.layer_norm(x, g("encoder.final_norm.weight"), g("encoder.final_norm.bias"))


def randomise_adapters(top: TopBlocks, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in top.blocks:
            for name in ADAPTED:
                block[name].b.copy_(torch.randn(block[name].b.shape, generator=g) * 0.05)


def test_unadapted_blocks_are_the_frozen_encoder():
    rng = np.random.default_rng(0)
    t = encoder(rng)
    x = rng.normal(0, 1, (2, 7, WIDTH)).astype(np.float32)
    top = TopBlocks(t, HEADS, LAYERS, first=1, rank=4, alpha=8)
    with torch.no_grad():
        got = top(torch.from_numpy(x)).numpy()
    for b in range(2):
        want = reference_top(t, x[b], first=1)
        assert np.abs(got[b] - want).max() <= 1e-5 * np.abs(want).max()


def test_merging_the_adapters_changes_no_output():
    rng = np.random.default_rng(1)
    t = encoder(rng)
    x = torch.from_numpy(rng.normal(0, 1, (3, 5, WIDTH)).astype(np.float32))
    top = TopBlocks(t, HEADS, LAYERS, first=1, rank=4, alpha=8)
    randomise_adapters(top, 1)
    with torch.no_grad():
        adapted = top(x).numpy()
        unadapted = TopBlocks(t, HEADS, LAYERS, first=1, rank=4, alpha=8)(x).numpy()
        assert np.abs(adapted - unadapted).max() > 1e-2  # the adapters do change the blocks
        merged = top.fold_merged(np.float32)
        assert all(float(block[n].b.abs().max()) == 0 for block in top.blocks for n in ADAPTED)
        assert np.abs(top(x).numpy() - adapted).max() <= 1e-5 * np.abs(adapted).max()
    # Every adapted linear of the adapted blocks, nothing else: W + (alpha / rank) · B · A.
    assert sorted(merged) == sorted(f"encoder.blocks.{i}.{n}.weight" for i in (1, 2) for n in ADAPTED)


def test_export_carries_the_merged_blocks_and_nothing_else_changed(tmp_path):
    rng = np.random.default_rng(2)
    t = encoder(rng)
    enc_path = encoder_file(t, tmp_path)
    top = TopBlocks(t, HEADS, LAYERS, first=2, rank=4, alpha=8)
    randomise_adapters(top, 2)
    merged = top.fold_merged(np.float16)
    head = Head(WIDTH, 4, 0.0, layers=3)
    args = argparse.Namespace(encoder=enc_path, mix=[1, 2], seconds=4.0, hop=4.0, id="tiny-ft", kind="speech",
                              data=[tmp_path], note="test", target_fa=0.01, out=tmp_path / "ft.safetensors",
                              description="fine-tuned")
    export(args, head, WIDTH, 1.0, 0.0, 0.5, {"lists": {}}, {"bonafide": 3, "world": 2}, encoder_tensors=merged)
    with safe_open(str(args.out), "np") as f:
        out = {k: f.get_tensor(k) for k in f.keys()}
        written = json.loads(f.metadata()["deepscreen"])
    for k, v in t.items():
        want = merged.get(k, v)
        assert out[k].dtype == v.dtype and np.array_equal(out[k], want), k
    assert any(not np.array_equal(merged[k], t[k]) for k in merged)
    assert [r["state"] for r in written["encoder"]["read"]["mix"]] == [1, 2, LAYERS + 1]
    assert written["description"] == "fine-tuned"
    assert written["provenance"]["train_clips"] == {"bonafide": 3, "world": 2}

    # The exported head and layer mix come back through --init-head, and the detector built on
    # them recomputes the final slot from the adapted blocks' input.
    again = Head(WIDTH, 4, 0.0, layers=3)
    init_head(again, args.out, [1, 2])
    assert np.allclose(again.mix_weights(), head.mix_weights(), atol=1e-6)
    stack = torch.from_numpy(rng.normal(0, 1, (2, 3, 5, WIDTH)).astype(np.float32))
    detector = Detector(top, again, source=1).eval()
    with torch.no_grad():
        want = again(torch.cat([stack[:, :2], top(stack[:, 1])[:, None]], dim=1))
        assert torch.allclose(detector(stack), want)
        assert not torch.allclose(detector(stack), again(stack))


def test_train_head_then_finetune_end_to_end(tmp_path):
    """Both scripts' main() on a tiny made-up set: a head trained, then its top block adapted
    from it, both exported and measured (the fakes' states are shifted, so both learn)."""
    import subprocess

    rng = np.random.default_rng(3)
    t = encoder(rng)
    enc_path = encoder_file(t, tmp_path)
    data, feats, layers = tmp_path / "data", tmp_path / "feats", tmp_path / "layers"
    for name, n in (("train", 40), ("dev", 24), ("dev-channel", 24)):
        rows = ["path,label,attack,source"]
        for i in range(n):
            fake = i % 2 == 1
            rows.append(f"{name}/{i}.flac,{'spoof' if fake else 'bonafide'},{['espeak-ng', 'world'][i % 4 // 2] if fake else '-'},"
                        f"{'gen' if fake else ['pkg-a', 'pkg-b'][i % 4 // 2]}")
        data.mkdir(exist_ok=True)
        (data / f"{name}.csv").write_text("\n".join(rows) + "\n")
        clip = np.repeat(np.arange(n), 2).astype(np.int32)
        # Fakes' states leaned along one direction (a uniform offset would vanish in the layer norms).
        direction = np.where(np.arange(WIDTH) < WIDTH // 2, 1.0, -1.0).astype(np.float32)
        shift = np.array([1.0 if i % 2 else 0.0 for i in clip], dtype=np.float32)[:, None, None] * direction
        for d in (feats, layers / "L1", layers / "L2"):
            d.mkdir(parents=True, exist_ok=True)
            states = rng.normal(0, 1, (len(clip), 5, WIDTH)).astype(np.float32) + shift
            np.savez(d / f"{name}-00000.npz", states=states.astype(np.float16), clip=clip)
    whisper = Path(__file__).resolve().parents[1] / "whisper"
    common = ["--data", str(data), "--features", str(feats), "--layer-features", str(layers), "--mix", "1", "2",
              "--encoder", str(enc_path), "--hidden", "8", "--hop", "4"]
    head = tmp_path / "head.safetensors"
    subprocess.run([sys.executable, str(whisper / "train_head.py"), *common, "--steps", "60", "--out", str(head),
                    "--report", str(tmp_path / "head.json")], check=True, capture_output=True)
    ft = tmp_path / "ft.safetensors"
    subprocess.run([sys.executable, str(whisper / "finetune_top.py"), *common, "--from-block", "2", "--rank", "2",
                    "--init-head", str(head), "--steps", "20", "--batch", "8", "--out", str(ft),
                    "--report", str(tmp_path / "ft.json")], check=True, capture_output=True)
    for report in ("head.json", "ft.json"):
        r = json.loads((tmp_path / report).read_text())
        assert set(r["lists"]) == {"dev", "dev-channel"}
        assert r["lists"]["dev"]["pooled"]["eer"] < 0.25, report  # the shift is learnable
    assert json.loads((tmp_path / "ft.json").read_text())["finetune"]["from_block"] == 2
    with safe_open(str(ft), "np") as f:
        out = {k: f.get_tensor(k) for k in f.keys()}
    assert not np.array_equal(out["encoder.blocks.2.qkv.weight"], t["encoder.blocks.2.qkv.weight"])
    assert np.array_equal(out["encoder.blocks.1.qkv.weight"], t["encoder.blocks.1.qkv.weight"])


def test_a_mixed_block_above_the_adapted_ones_is_refused(monkeypatch):
    import finetune_top
    import pytest

    monkeypatch.setattr(sys, "argv", ["finetune_top.py", "--data", "d", "--features", "f", "--layer-features", "l",
                                      "--mix", "2", "4", "5", "--from-block", "4", "--encoder", "e"])
    with pytest.raises(SystemExit, match="highest of --mix"):
        finetune_top.main()
