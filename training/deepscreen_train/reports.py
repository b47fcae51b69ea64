"""One reader of `deepscreen screen` JSONL reports for every script in training/.

A report has one row per file (and may hold a summary or header record without a `path`, which
is skipped). A path reported twice is an error: reports are never silently mixed. What a script
cannot use is filtered here, by name, instead of by each script's own loop:

- `drop_errors`: rows with an `error` (the file could not be read or decoded);
- `need_score`: rows without a score (a `no-signal` row: silence, nothing to judge);
- `need_segments`: rows without per-window segments (screened without `--segments`).
"""

from __future__ import annotations

import json
from pathlib import Path


def read_report(path: Path, *, drop_errors: bool = False, need_score: bool = False,
                need_segments: bool = False) -> dict[str, dict]:
    """Rows by path, in the report's order, after the filters asked for."""
    rows: dict[str, dict] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not a JSON row ({e.msg})") from None
        if "path" not in row:
            continue  # a summary or header record
        if row["path"] in rows:
            raise ValueError(f"{path}: {row['path']} is reported twice")
        rows[row["path"]] = row
    return {p: r for p, r in rows.items()
            if not (drop_errors and r.get("error"))
            and not (need_score and r.get("score") is None)
            and not (need_segments and not r.get("segments"))}
