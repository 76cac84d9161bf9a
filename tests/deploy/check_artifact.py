"""Checks what `sam build` produced for the function: an arm64 (AArch64) Linux ELF executable named
`bootstrap`, within Lambda's size limits. Prints the ELF facts, `file`'s opinion when `file` is
installed, and the size of the deployment zip (built here the way `sam deploy` packages it:
deflated, `bootstrap` at the root, executable bit kept).

Usage: python tests/deploy/check_artifact.py .aws-sam/build/McpFunction/bootstrap
"""

from __future__ import annotations

import io
import shutil
import stat
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

EM_AARCH64 = 183
ET_EXEC, ET_DYN = 2, 3
ZIP_LIMIT = 50 * 1024 * 1024  # direct upload limit for a zipped function
UNZIPPED_LIMIT = 250 * 1024 * 1024


def elf_header(data: bytes) -> dict[str, int | str]:
    """The fields of an ELF header that matter here; raises ValueError when it is not ELF64 LE."""
    if data[:4] != b"\x7fELF":
        raise ValueError("not an ELF file")
    ei_class, ei_data = data[4], data[5]
    if ei_class != 2:
        raise ValueError(f"not a 64-bit ELF (EI_CLASS={ei_class})")
    if ei_data != 1:
        raise ValueError(f"not little-endian (EI_DATA={ei_data})")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    return {"class": "ELF64", "endianness": "little", "type": e_type, "machine": e_machine}


def check(path: Path) -> int:
    data = path.read_bytes()
    header = elf_header(data)
    if header["machine"] != EM_AARCH64:
        raise ValueError(f"e_machine is {header['machine']}, not AArch64 ({EM_AARCH64})")
    if header["type"] not in (ET_EXEC, ET_DYN):
        raise ValueError(f"e_type is {header['type']}, not an executable")
    if not path.stat().st_mode & stat.S_IXUSR:
        raise ValueError("bootstrap is not executable")
    if len(data) > UNZIPPED_LIMIT:
        raise ValueError(f"{len(data)} bytes is over Lambda's unzipped limit")

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, data)
    zipped = len(buffer.getvalue())
    if zipped > ZIP_LIMIT:
        raise ValueError(f"zip of {zipped} bytes is over Lambda's 50 MB upload limit")

    kind = "executable" if header["type"] == ET_EXEC else "PIE executable"
    print(f"{path}: ELF64 little-endian AArch64 (e_machine={header['machine']}) {kind}, {len(data)} bytes")
    if shutil.which("file"):
        described = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, check=False)
        print(f"file: {described.stdout.strip()}")
    print(f"deployment zip: {zipped} bytes ({zipped / 1024 / 1024:.2f} MiB, deflated)")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1])
    if not path.is_file():
        print(f"{path}: missing; did `sam build` run?", file=sys.stderr)
        return 1
    try:
        return check(path)
    except ValueError as error:
        print(f"{path}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
