"""make_fakes.py's plans: an attack whose trained vocoder is missing is planned all the same and
only its jobs dropped, so a later run that has the vocoder plans every other attack exactly as
before. (Outputs are named by position and kept on a rerun: a shifted plan would label kept
clips with other sources, excerpts and seeds.)"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import make_fakes  # noqa: E402

from deepscreen_train.common import GENERATORS, write_rows  # noqa: E402


def music_args(tmp: Path, gan: Path) -> argparse.Namespace:
    real = tmp / "real"
    rows = [dict(path=f"music/{pkg}/{i}.ogg", kind="music", source=pkg, package=pkg)
            for pkg in ("warzone2100-music", "wesnoth-1.16-music", "supertux-data") for i in range(3)]
    real.mkdir(exist_ok=True)
    write_rows(real / "real.csv", rows, ["path", "kind", "source", "package"])
    return argparse.Namespace(real=real, ae=tmp / "ae", gan=gan, out=tmp / "fake", kind="music",
                              train_per_generator=3, dev_per_generator=2)


def test_a_missing_vocoder_does_not_shift_the_plans_of_the_attacks_after_it(tmp_path, monkeypatch):
    monkeypatch.setattr(make_fakes, "duration", lambda path: 40.0)  # no audio needed to plan
    ae, full, partial = tmp_path / "ae", tmp_path / "gan-full", tmp_path / "gan-partial"
    for d in (ae, full, partial):
        d.mkdir()
    for attack in GENERATORS["music"]:
        if attack.startswith("ae-"):
            (ae / f"{attack[3:]}.pt").touch()
        if attack.startswith("gan-"):
            (full / f"{attack[4:]}.pt").touch()
    # The partial set lacks the first GAN vocoder, which comes before the codecs in the table.
    gans = [a for a in GENERATORS["music"] if a.startswith("gan-")]
    for attack in gans[1:]:
        (partial / f"{attack[4:]}.pt").touch()
    with_all = make_fakes.music_plan(music_args(tmp_path, full), make_fakes.random.Random(0))
    without_first = make_fakes.music_plan(music_args(tmp_path, partial), make_fakes.random.Random(0))

    def strip(jobs):
        return [{k: v for k, v in j.items() if k != "gan"} for j in jobs]

    assert {j["attack"] for j in with_all} - {j["attack"] for j in without_first} == {gans[0]}
    assert strip([j for j in with_all if j["attack"] != gans[0]]) == strip(without_first)


def test_a_list_row_names_the_real_excerpt_a_fake_was_made_from(tmp_path):
    args = argparse.Namespace(real=tmp_path / "real", out=tmp_path / "fake", kind="music")
    job = dict(attack="mlsa", source="supertux-data", split="dev", input=str(tmp_path / "real/music/supertux/a.ogg"),
               start=12.34567, seconds=10.0, output=str(tmp_path / "fake/music/mlsa/dev/00003.flac"))
    make_fakes.list_row(job, args)
    write_rows(tmp_path / "fake.csv", [job], make_fakes.FAKE_LIST_FIELDS)
    lines = (tmp_path / "fake.csv").read_text().splitlines()
    assert lines == ["path,kind,attack,source,split,input,start",
                     "music/mlsa/dev/00003.flac,music,mlsa,supertux-data,dev,music/supertux/a.ogg,12.346"]
    tts = dict(attack="flite", source="flite:slt", split="dev", output=str(tmp_path / "fake/speech/flite/dev/00000.wav"))
    make_fakes.list_row(tts, argparse.Namespace(real=tmp_path / "real", out=tmp_path / "fake", kind="speech"))
    assert (tts["input"], tts["start"]) == ("", "")
