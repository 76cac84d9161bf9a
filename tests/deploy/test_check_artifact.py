"""`make sam-build`'s artifact check accepts an arm64 ELF executable and refuses anything else."""

from __future__ import annotations

import platform
import struct
import sys
from pathlib import Path

import pytest
from check_artifact import EM_AARCH64, check

EM_X86_64 = 62


def fake_elf(path: Path, machine: int, *, elf_class: int = 2, executable: bool = True) -> Path:
    header = b"\x7fELF" + bytes([elf_class, 1, 1]) + bytes(9) + struct.pack("<HHI", 2, machine, 1)
    path.write_bytes(header + bytes(4096))
    path.chmod(0o755 if executable else 0o644)
    return path


def test_accepts_an_arm64_executable(tmp_path, capsys):
    assert check(fake_elf(tmp_path / "bootstrap", EM_AARCH64)) == 0
    out = capsys.readouterr().out
    assert "AArch64" in out and "deployment zip:" in out


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: fake_elf(p, EM_X86_64), "not AArch64"),
        (lambda p: fake_elf(p, EM_AARCH64, elf_class=1), "not a 64-bit ELF"),
        (lambda p: fake_elf(p, EM_AARCH64, executable=False), "not executable"),
        (lambda p: (p.write_text("#!/bin/sh\n"), p)[1], "not an ELF"),
    ],
    ids=["x86_64", "elf32", "not-executable", "script"],
)
def test_refuses_anything_else(tmp_path, make, message):
    with pytest.raises(ValueError, match=message):
        check(make(tmp_path / "bootstrap"))


def test_refuses_this_machines_own_python():
    # A real x86_64 ELF, as a host build instead of a cross build would produce.
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("needs an x86_64 Linux host")
    with pytest.raises(ValueError):
        check(Path(sys.executable).resolve())
