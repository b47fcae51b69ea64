"""train_head.py --hold-out-family: a leave-one-family-out head trains on no window of a clip
whose generator belongs to a held-out family, and keeps every other window."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "whisper"))
from train_head import fixed_mix_of  # noqa: E402


def write_list(data: Path, name: str, rows: list[dict], shards: list[np.ndarray], layers: list[str],
               rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """A prepared list as features.py leaves it: NAME.csv, and per shard the windows' clip
    indices with random states in DATA/final and DATA/layers/L{k}; returns the states per dir."""
    data.mkdir(parents=True, exist_ok=True)
    (data / f"{name}.csv").write_text("path,label,attack,source\n" + "".join(
        f"{i}.flac,{r['label']},{r['attack']},{r.get('source', 'pkg')}\n" for i, r in enumerate(rows)))
    written: dict[str, list[np.ndarray]] = {d: [] for d in ["final", *layers]}
    for shard, clip in enumerate(shards):
        for d in written:
            (data / d).mkdir(parents=True, exist_ok=True)
            states = rng.normal(0, 1, (len(clip), 3, 4)).astype(np.float16)
            np.savez(data / d / f"{name}-{shard:05d}.npz", states=states, clip=clip.astype(np.int32))
            written[d].append(states)
    return written


def test_held_out_families_lose_their_windows_and_nothing_else(tmp_path):
    from train_head import clip_counts, load_stack, trained_on

    rows = [
        {"label": "bonafide", "attack": "-"},
        {"label": "spoof", "attack": "espeak-ng"},  # tts
        {"label": "spoof", "attack": "world"},  # vocoder
        {"label": "spoof", "attack": "flite"},  # tts
        {"label": "spoof", "attack": "ae-rvq"},  # neural-codec
    ]
    clip = np.array([0, 0, 1, 2, 2, 3, 4, 4, 4])
    written = write_list(tmp_path, "train", rows, [clip[:4], clip[4:]], ["layers/L2"], np.random.default_rng(1))
    states = np.stack([np.concatenate(written["layers/L2"]), np.concatenate(written["final"])], axis=1)
    sets, layer_dirs = [(tmp_path, tmp_path / "final")], [tmp_path / "layers"]

    def load(held_out):
        return load_stack(sets, layer_dirs, [2], "train", trained_on("speech", frozenset(held_out)))

    s, c, r = load({"tts"})
    assert c.tolist() == [0, 0, 2, 2, 4, 4, 4] and len(r) == len(rows)  # indices stay the list's
    assert np.array_equal(s, states[[0, 1, 3, 4, 6, 7, 8]])

    s, c, _ = load({"vocoder", "neural-codec"})
    assert c.tolist() == [0, 0, 1, 3]
    assert np.array_equal(s, states[[0, 1, 2, 5]])

    s, c, _ = load(set())
    assert c.tolist() == clip.tolist() and np.array_equal(s, states)
    # The second shard (windows 4-8: rows 2-4) keeps nothing and adds nothing.
    s, c, _ = load({"tts", "vocoder", "neural-codec"})
    assert c.tolist() == [0, 0] and np.array_equal(s, states[[0, 1]])
    # What the exported head records as its training clips (evaluate.py's "seen in training").
    assert clip_counts(rows, trained_on("speech", frozenset({"tts"}))) == {"ae-rvq": 1, "bonafide": 1, "world": 1}


def test_groups_weigh_generators_and_real_packages_as_one_family():
    from train_head import balanced_sampling, family

    rows = [
        {"label": "bonafide", "attack": "-", "source": "asterisk-core-sounds-en"},
        {"label": "bonafide", "attack": "-", "source": "asterisk-core-sounds-fr"},
        {"label": "bonafide", "attack": "-", "source": "fillets-ng-data"},
        {"label": "spoof", "attack": "ae-rvq", "source": "x"},
        {"label": "spoof", "attack": "ae-istft", "source": "x"},
        {"label": "spoof", "attack": "world", "source": "x"},
    ]
    groups = ["ae-", "asterisk-core-sounds"]
    assert [family(r, groups) for r in rows] == ["asterisk-core-sounds", "asterisk-core-sounds", "fillets-ng-data",
                                                "ae-", "ae-", "world"]
    assert [family(r) for r in rows][:2] == ["asterisk-core-sounds-en", "asterisk-core-sounds-fr"]
    # One window per clip: each class half the draws, each family of a class alike.
    labels, weights = balanced_sampling(np.arange(len(rows)), rows, groups)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.allclose(weights, [0.125, 0.125, 0.25, 0.125, 0.125, 0.25])


def test_without_sources_drops_a_package_and_renumbers_the_clips():
    from train_head import without_sources

    rows = [
        {"label": "bonafide", "source": "a"},
        {"label": "bonafide", "source": "b"},
        {"label": "spoof", "source": "b"},  # a fake made from package b stays
        {"label": "bonafide", "source": "c"},
    ]
    logits = np.array([0.1, 0.2, 1.0, 2.0, 2.5, 3.0])
    clip = np.array([0, 1, 1, 2, 2, 3])
    (lg, c, r), = without_sources({"dev": (logits, clip, rows)}, ["b"]).values()
    assert lg.tolist() == [0.1, 2.0, 2.5, 3.0]
    assert c.tolist() == [0, 1, 1, 2]
    assert [x["source"] for x in r] == ["a", "b", "c"] and r[1]["label"] == "spoof"
    assert without_sources({"dev": (logits, clip, rows)}, [])["dev"][0] is logits


def test_load_stack_joins_sets_and_shards_like_a_plain_concatenation(tmp_path):
    from train_head import load_stack

    rng = np.random.default_rng(0)
    sets, layer_dirs, want = [], [], {"states": [], "clip": [], "rows": []}
    for s in range(2):
        data = tmp_path / f"set{s}"
        data.mkdir()
        n_rows = 5 + s
        (data / "dev.csv").write_text("path,label,attack,source\n" + "".join(
            f"{s}/{i}.flac,bonafide,-,pkg{s}\n" for i in range(n_rows)))
        for shard, rows in enumerate((range(0, 3), range(3, n_rows))):
            clip = np.repeat(np.array(list(rows), dtype=np.int32), 2)
            per_dir = {}
            for d in ("final", "layers/L1", "layers/L2"):
                (data / d).mkdir(parents=True, exist_ok=True)
                per_dir[d] = rng.normal(0, 1, (len(clip), 3, 4)).astype(np.float16)
                np.savez(data / d / f"dev-{shard:05d}.npz", states=per_dir[d], clip=clip)
            want["states"].append(np.stack([per_dir["layers/L1"], per_dir["layers/L2"], per_dir["final"]], axis=1))
            want["clip"].append(clip + len(want["rows"]))
        want["rows"] += [f"{s}/{i}.flac" for i in range(n_rows)]
        sets.append((data, data / "final"))
        layer_dirs.append(data / "layers")
    stack, clip, rows = load_stack(sets, layer_dirs, [1, 2], "dev")
    assert np.array_equal(stack, np.concatenate(want["states"]))
    assert np.array_equal(clip, np.concatenate(want["clip"]))
    assert [r["path"] for r in rows] == want["rows"]
    final, clip2, _ = load_stack(sets, layer_dirs, [], "dev")
    assert np.array_equal(final, np.concatenate(want["states"])[:, -1]) and np.array_equal(clip2, clip)


def test_fixed_mix_of_reads_a_head_model_and_refuses_any_other(tmp_path):
    def model(read) -> Path:
        path = tmp_path / f"m{len(list(tmp_path.iterdir()))}.safetensors"
        config = {"encoder": {"kind": "whisper", "layers": 6, "read": read}}
        save_file({"x": np.zeros(1, np.float32)}, str(path), metadata={"deepscreen": json.dumps(config)})
        return path

    head = model({"mix": [{"state": 2, "weight": 0.2}, {"state": 4, "weight": 0.3}, {"state": 7, "weight": 0.5}]})
    assert fixed_mix_of(head, [2, 4]).tolist() == [0.2, 0.3, 0.5]
    assert fixed_mix_of(None, [2, 4]) is None
    for other, mix in ((head, [2]), (model("final"), [2, 4])):  # another mix; an encoder that mixes nothing
        with pytest.raises(SystemExit, match="does not mix blocks"):
            fixed_mix_of(other, mix)
