"""data/gan_vocoder.py: every instance is an attack of the recipe, and the GAN-trained codec
family works: the residual quantiser against a naive numpy reference, its moving-average
codebooks converging on the means of what they are given, unused entries restarted, and a codec
that trains, saves its codebooks and copy-synthesises any length."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from gan_vocoder import INSTANCES, Codec, Instance, ResidualVQ, copy_synthesis, load, train  # noqa: E402

from deepscreen_train.common import GENERATORS  # noqa: E402


def test_every_trained_instance_is_an_attack_with_its_family():
    for kind, instances in INSTANCES.items():
        attacks = {a: fam for a, (fam, _) in GENERATORS[kind].items() if a.startswith("gan-")}
        assert set(attacks) == {f"gan-{name}" for name in instances}, kind
        for name, inst in instances.items():
            assert attacks[f"gan-{name}"] == f"gan-{inst.family}"


def naive_rvq(x: np.ndarray, codebooks: np.ndarray) -> np.ndarray:
    """Each codebook in turn: the entry nearest to what is left (brute force, float64)."""
    out = np.zeros_like(x)
    for i, v in enumerate(x):
        left = v.copy()
        for book in codebooks:
            e = book[np.argmin(((book - left) ** 2).sum(axis=1))]
            out[i] += e
            left -= e
    return out


def test_quantiser_matches_a_naive_residual_search_and_passes_gradients_straight_through():
    torch.manual_seed(0)
    vq = ResidualVQ(dim=5, books=3, size=16)
    vq.codebooks.copy_(torch.randn(3, 16, 5) / torch.arange(1, 4).view(3, 1, 1))  # coarse → fine
    vq.ready.fill_(True)
    vq.eval()
    z = torch.randn(2, 5, 7, requires_grad=True)
    q, commitment = vq(z)
    x = z.detach().transpose(1, 2).reshape(-1, 5).double().numpy()
    want = naive_rvq(x, vq.codebooks.double().numpy())
    got = q.detach().transpose(1, 2).reshape(-1, 5).double().numpy()
    assert np.abs(got - want).max() < 1e-5
    assert abs(commitment.item() - ((x - want) ** 2).mean()) < 1e-6
    # Straight through: the decoder's gradient reaches the encoder unchanged.
    (q * torch.arange(7.0)).sum().backward()
    assert torch.allclose(z.grad, torch.arange(7.0).expand(2, 5, 7))
    # Each codebook leaves less than the one before it.
    left = [np.linalg.norm(x - naive_rvq(x, vq.codebooks[:k].double().numpy())) for k in range(4)]
    assert all(a > b for a, b in zip(left, left[1:])), left


def test_codebook_entries_move_to_the_means_of_their_vectors():
    torch.manual_seed(1)
    centres = torch.tensor([[3.0, 0.0], [-3.0, 1.0]])
    vq = ResidualVQ(dim=2, books=1, size=2)
    vq.codebooks[0] = torch.tensor([[2.0, 0.5], [-2.0, 0.0]])  # near, not on, the centres
    vq.sums[0] = vq.codebooks[0].clone()
    vq.ready.fill_(True)
    vq.train()
    for _ in range(800):
        points = centres.repeat(16, 1) + 0.05 * torch.randn(32, 2)
        vq(points.T[None])
    assert torch.allclose(vq.codebooks[0], centres, atol=0.03), vq.codebooks[0]


def test_first_batch_seeds_the_codebooks_and_an_unused_entry_is_restarted_on_the_data():
    torch.manual_seed(2)
    vq = ResidualVQ(dim=3, books=1, size=4).train()
    data = torch.tensor([[1.0, 1.0, 1.0], [-1.0, 0.0, 2.0]]).repeat(8, 1)
    vq(data.T[None])
    # Seeded from the batch: every entry sits on one of its two vectors.
    dist = torch.cdist(vq.codebooks[0], data[:2]).min(dim=1).values
    assert (dist < 0.01).all(), vq.codebooks[0]
    vq.codebooks[0, 0] = torch.tensor([50.0, 50.0, 50.0])  # an entry nothing is near
    vq.sums[0, 0] = vq.codebooks[0, 0]
    for _ in range(600):
        vq(data.T[None])
    assert torch.cdist(vq.codebooks[0, :1], data[:2]).min() < 0.01, vq.codebooks[0, 0]


def test_a_small_codec_trains_saves_its_codebooks_and_copy_synthesises_any_length(tmp_path):
    inst = Instance("codec", 8000, (4, 2), 8, 0, latent=8, books=2)
    t = np.arange(8000 * 4) / 8000
    audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))).astype(np.float32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions: a second thread only waits (and a busy core stalls it)
    try:
        train(inst, "tiny", audio, tmp_path, minutes=0, steps=3, device="cpu", batch=2)
    finally:
        torch.set_num_threads(threads)
    assert not (tmp_path / "tiny.ckpt").exists()
    gen, front, loaded = load(tmp_path / "tiny.pt")
    assert loaded == inst
    assert isinstance(front, Codec)
    assert bool(front.quantiser.ready) and front.quantiser.codebooks.abs().sum() > 0
    for n in (8000, 8003, 37):  # whole frames and not
        y = copy_synthesis((gen, front, loaded), audio[:n])
        assert y.shape == (n,) and np.isfinite(y).all()
    # Deterministic: a fake is a function of its input.
    assert np.array_equal(copy_synthesis((gen, front, loaded), audio[:8003]),
                          copy_synthesis((gen, front, loaded), audio[:8003]))


def test_the_codec_latent_follows_its_input():
    """A codec whose latent is the same for any input decodes nothing of it (the first, waveform
    encoder's did after 800 steps): from the mel, two tones differ from the first step."""
    torch.manual_seed(3)
    codec = Codec(INSTANCES["music"]["codec-24k"]).eval()
    t = np.arange(24000) / 24000
    with torch.no_grad():
        z = [codec.encoder(torch.from_numpy((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32))[None]).mean(dim=2)
             for f in (110, 880)]
    assert (z[0] - z[1]).norm() > 0.1 * z[0].norm()
