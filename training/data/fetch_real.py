"""Rebuilds the bona fide (real) audio allowed for training and development (../shared/DATA.md)
from Debian packages: downloads each package with `apt-get download`, unpacks it with
`dpkg-deb -x` (no system install), and copies its audio into OUT/<kind>/<package>/, extracting
the clips that live inside game archives (Flight of the Amazon Queen's queen.1c, 0 A.D.'s zip
archives). Writes OUT/real.csv: path,kind,source,package — split by `source` (a whole package
goes to train or dev), never by clip.

    python training/data/fetch_real.py --out data/real            # speech and music
    python training/data/fetch_real.py --out data/real --kind speech --only flight-of-the-amazon-queen

No audio is committed: rerun this to rebuild.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# DATA.md: the only real-audio packages allowed for training and development.
PACKAGES = {
    "speech": [
        "flight-of-the-amazon-queen",
        "fillets-ng-data",
        "fillets-ng-data-cs",
        "fillets-ng-data-nl",
        "klettres-data",
        "ktuberling-data",
        "gcin-voice",
        # Data v3: studio telephone prompts, each language as WAV and through two real telephony
        # codecs (GSM 06.10, G.722). A recording and its codec variants are one source.
        *[f"asterisk-core-sounds-{lang}-{codec}" for lang in ("en", "es", "fr", "it", "ru")
          for codec in ("wav", "gsm", "g722")],
    ],
    "music": [
        "warzone2100-music",
        "ufoai-music",
        "0ad-data",
        "planetblupi-music-ogg",
        "wesnoth-1.16-music",
        "supertux-data",
        # Data v3: music on hold (WAV, GSM, G.722: one source) and four games' recorded music.
        *[f"asterisk-moh-opsound-{codec}" for codec in ("wav", "gsm", "g722")],
        "flare-game",
        "freedroidrpg-data",
        "redeclipse-data",
        "warmux-data",
    ],
}
AUDIO = {".ogg", ".oga", ".mp3", ".wav", ".flac", ".opus"}
# Raw telephony codec files (Asterisk's variants): decoded to WAV with ffmpeg on the way in, so
# every later step reads them like any other file. The value is ffmpeg's demuxer.
TELEPHONY = {".gsm": "gsm", ".g722": "g722"}
# Only the music of these packages' archives/trees is wanted (they also hold sound effects and
# voices): a file is kept only when one of its folders has this name.
MUSIC_HINTS = {
    "0ad-data": "music",
    "supertux-data": "music",
    "flare-game": "music",
    "freedroidrpg-data": "music",
    "redeclipse-data": "music",
    "warmux-data": "music",
}
# Codec variants of one recording set, named package-CODEC: they split together.
CODEC_SUFFIXES = ("-wav", "-gsm", "-g722")


def source_of(package: str) -> str:
    """The split unit of a package: Asterisk's -wav/-gsm/-g722 variants are the same
    recordings through different channels, so they share one source."""
    for suffix in CODEC_SUFFIXES:
        if package.startswith("asterisk-") and package.endswith(suffix):
            return package[: -len(suffix)]
    return package


def telephony_to_wav(src: Path, target: Path) -> Path:
    """A raw GSM / G.722 file → WAV at the codec's own rate (8 / 16 kHz), losslessly from the
    decoded samples: the codec's damage is what we keep."""
    target = target.with_suffix(target.suffix + ".wav")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", TELEPHONY[src.suffix.lower()],
                    "-i", str(src), "-c:a", "pcm_s16le", str(target)], check=True)
    return target


def queen_clips(archive: Path, out: Path) -> list[Path]:
    """Flight of the Amazon Queen: magic QTBL, entry count (big-endian u16) at byte 13, then
    21-byte entries from byte 15 (12-byte NUL-padded name, 1 byte, big-endian u32 offset and size);
    the .SB entries are MP3 voice clips."""
    data = archive.read_bytes()
    if data[:4] != b"QTBL":
        raise ValueError(f"{archive}: not a QTBL archive")
    count = struct.unpack(">H", data[13:15])[0]
    written = []
    for i in range(count):
        entry = data[15 + 21 * i : 15 + 21 * (i + 1)]
        name = entry[:12].rstrip(b"\0").decode("latin-1")
        offset, size = struct.unpack(">II", entry[13:21])
        if name.upper().endswith(".SB") and size > 0:
            path = out / (Path(name).stem + ".mp3")
            path.write_bytes(data[offset : offset + size])
            written.append(path)
    return written


def zipped_audio(archive: Path, out: Path, hint: str | None) -> list[Path]:
    written = []
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            p = Path(info.filename)
            if p.suffix.lower() in AUDIO and (hint is None or hint in p.parts):
                target = out / "__".join(p.parts)
                with z.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                written.append(target)
    return written


def fetch(package: str, kind: str, out_root: Path, cache: Path) -> list[Path]:
    cache.mkdir(parents=True, exist_ok=True)
    out = out_root / kind / package
    done = out / ".complete"
    if done.exists():  # resumable: a package unpacked in full before is kept
        return sorted(p for p in out.iterdir() if p.is_file() and p.name != ".complete")
    debs = sorted(cache.glob(f"{package}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", package], cwd=cache, check=True)
        debs = sorted(cache.glob(f"{package}_*.deb"))
    if out.exists():
        shutil.rmtree(out)  # a half-unpacked package from a stopped run
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    hint = MUSIC_HINTS.get(package)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), tmp], check=True)
        for f in sorted(Path(tmp).rglob("*")):
            if not f.is_file():
                continue
            if f.name == "queen.1c":
                written += queen_clips(f, out)
            elif f.suffix.lower() in {".zip", ".pk3"}:  # pk3 = zip (UFO:AI)
                written += zipped_audio(f, out, hint)
            elif f.suffix.lower() in AUDIO | TELEPHONY.keys() and (hint is None or hint in f.parts):
                target = out / "__".join(f.relative_to(tmp).parts[-3:])
                if f.suffix.lower() in TELEPHONY:
                    written.append(telephony_to_wav(f, target))
                else:
                    shutil.copyfile(f, target)
                    written.append(target)
    done.touch()
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--kind", choices=["speech", "music", "all"], default="all")
    ap.add_argument("--only", nargs="*", help="restrict to these packages")
    ap.add_argument("--cache", type=Path, help="where .deb files are kept [OUT/.debs]")
    args = ap.parse_args()
    cache = args.cache or args.out / ".debs"
    rows = []
    kinds = ["speech", "music"] if args.kind == "all" else [args.kind]
    for kind in kinds:
        for package in PACKAGES[kind]:
            if args.only and package not in args.only:
                continue
            files = fetch(package, kind, args.out, cache)
            print(f"{kind:6} {package:28} {len(files):6} files", flush=True)
    # The list covers everything fetched so far (earlier runs included).
    for kind in ("speech", "music"):
        for pkg_dir in sorted((args.out / kind).glob("*")):
            for p in sorted(q for q in pkg_dir.iterdir() if q.name != ".complete"):
                rows.append((str(p.relative_to(args.out)), kind, source_of(pkg_dir.name), pkg_dir.name))
    with open(args.out / "real.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "kind", "source", "package"])
        w.writerows(rows)
    print(f"{len(rows)} files listed in {args.out / 'real.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
