"""Data roots for the hostile-input tests: a copy of examples/data with links that lead out of it,
and a snapshot of a root to show that nothing in it changed."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from conftest import DATA

SECRET = "TOPSECRET-7f3a"


def hostile_root(tmp: Path) -> tuple[Path, Path]:
    """A copy of examples/data under `tmp/root`, with `etc-link` → /etc and `secret-link.csv` →
    a CSV outside the root (`tmp/outside/secret.csv`, holding SECRET). Returns (root, secret)."""
    root = tmp / "root"
    outside = tmp / "outside"
    shutil.copytree(DATA, root)
    outside.mkdir()
    secret = outside / "secret.csv"
    secret.write_text(f"secret,order_id\n{SECRET},1\n")
    (root / "etc-link").symlink_to("/etc", target_is_directory=True)
    (root / "secret-link.csv").symlink_to(secret)
    return root, secret


def snapshot(root: Path, skip: str | None = None) -> dict[str, str]:
    """Every path under `root` (links not followed) with its content hash or link target."""
    state = {}
    paths = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        paths.extend(Path(folder) / name for name in dirs + files)
    for path in sorted(paths):
        relative = path.relative_to(root).as_posix()
        if skip and (relative == skip or relative.startswith(skip + "/")):
            continue
        if path.is_symlink():
            state[relative] = "link:" + str(path.readlink())
        elif path.is_dir():
            state[relative] = "dir"
        else:
            state[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state
