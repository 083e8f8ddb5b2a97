"""Builds the installable app: dist/SalesCSV/ (one folder, no Python needed) and an archive of it.

Run it with the project's environment: `.venv/bin/python scripts/build_app.py` (Windows:
`.venv\\Scripts\\python scripts\\build_app.py`). It installs the pinned build tools of
requirements-build.txt into that environment if they are missing, runs PyInstaller on
app_bundle/SalesCSV.spec, adds the Linux desktop entry, archives the folder, and prints the
sizes and the largest files. `scripts/check_bundle.py` then runs the result as a user would.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "app_bundle" / "SalesCSV.spec"
BUILD_REQUIREMENTS = ROOT / "requirements-build.txt"
NAME = "SalesCSV"
# The targets the issue sets; check_bundle.py holds the built app to them.
FOLDER_TARGET_MB = 250
ARCHIVE_TARGET_MB = 100
MB = 1_000_000


def pins(requirements: Path) -> dict[str, str]:
    """name -> version of every `name==version` line (markers that do not apply are skipped)."""
    found = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)\s*(?:;\s*(.+))?", line)
        if match and (match[3] is None or _marker_applies(match[3])):
            found[match[1]] = match[2]
    return found


def _marker_applies(marker: str) -> bool:
    from packaging.markers import Marker  # pip's own dependency, in every environment with pip

    return Marker(marker).evaluate()


def mismatched(wanted: dict[str, str]) -> list[str]:
    """The pins whose package is missing or at another version, as `name==version`."""
    wrong = []
    for name, version in wanted.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            wrong.append(f"{name}=={version}")
    return wrong


def check_environment() -> str | None:
    """None when this Python can build the app (installing the build tools if need be), else
    a sentence saying what to do."""
    if sys.prefix == sys.base_prefix:
        return ("Run this with the project's virtual environment, so that the app is built from "
                "the packages it was tested with: .venv/bin/python scripts/build_app.py (make "
                "it first as README.md's \"Start here\" says).")
    runtime = mismatched(pins(ROOT / "requirements.txt"))
    if runtime:
        return (f"This environment does not have the app's pinned packages ({', '.join(runtime)}"
                f"); run {_venv_pip()} install -r requirements.txt first.")
    if mismatched(pins(BUILD_REQUIREMENTS)):
        print(f"Installing the build tools ({BUILD_REQUIREMENTS.name})...", flush=True)
        result = subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                                 "--disable-pip-version-check", "-r", str(BUILD_REQUIREMENTS)])
        if result.returncode != 0:
            return f"Could not install the build tools of {BUILD_REQUIREMENTS.name} (see above)."
    return None


def _venv_pip() -> str:
    return r".venv\Scripts\pip" if os.name == "nt" else ".venv/bin/pip"


def build(dist: Path, work: Path) -> Path:
    """Runs PyInstaller; returns the app's folder. Nothing is kept from an earlier build."""
    folder = dist / NAME
    shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    environment = dict(os.environ)
    # PyInstaller caches processed libraries in the user's home; keep its cache in the work
    # folder, which every build starts without, so that a build here is a build anywhere.
    environment["PYINSTALLER_CONFIG_DIR"] = str(work / "pyinstaller-config")
    subprocess.run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean",
                    "--log-level", "WARN", "--distpath", str(dist), "--workpath", str(work),
                    str(SPEC)], check=True, env=environment, cwd=ROOT)
    if sys.platform.startswith("linux"):
        strip_symbols(folder / "_internal")
        for name in ("sales-csv.desktop", "install-shortcut.sh"):
            shutil.copy2(ROOT / "app_bundle" / name, folder / name)
    return folder


# Symbol tables are for debuggers, and some libraries come with theirs: Python's (when it was
# built on the machine, as pyenv does), Arrow's and ICU's; stripping them is most of what keeps
# the folder under its target. Not everything is stripped: libraries that auditwheel grafted
# into a wheel (numpy.libs/) were rewritten by patchelf, and strip turns those into files the
# loader refuses ("ELF load command address/offset not page-aligned"); so PyInstaller's own
# strip-everything option stays off.
_STRIPPED = ("libpython3*.so*", "python3*/lib-dynload/*.so", "pyarrow/*.so*",
             "PySide6/Qt/lib/libicu*.so*")


def strip_symbols(internal: Path) -> None:
    """Strips the symbol tables of the libraries that are safe to strip (Linux)."""
    files = {path for pattern in _STRIPPED for path in internal.glob(pattern)
             if path.is_file() and not path.is_symlink()}
    subprocess.run(["strip", "--strip-unneeded", *sorted(map(str, files))], check=True)


def archive(folder: Path, version: str) -> Path:
    """The folder as one file to hand out: .zip on Windows, .tar.gz elsewhere (keeps the
    symbolic links and the launcher's execute bit)."""
    system = {"win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    base = folder.parent / f"{NAME}-{version}-{system}-{platform.machine().lower()}"
    for old in folder.parent.glob(f"{NAME}-*.*"):
        old.unlink()
    kind = "zip" if os.name == "nt" else "gztar"
    return Path(shutil.make_archive(str(base), kind, root_dir=folder.parent,
                                    base_dir=folder.name))


def files_by_size(folder: Path) -> list[tuple[int, Path]]:
    """Every regular file under folder with its size, largest first (links are not counted,
    as du does not count them twice)."""
    sizes = [(path.stat().st_size, path) for path in folder.rglob("*")
             if path.is_file() and not path.is_symlink()]
    return sorted(sizes, key=lambda item: (-item[0], str(item[1])))


def describe(folder: Path, archived: Path, seconds: float) -> None:
    """Prints the sizes against the targets and the ten largest files."""
    files = files_by_size(folder)
    total = sum(size for size, _ in files)
    print(f"Built {folder} in {seconds:.0f} s: {len(files):,} files, {total / MB:.1f} MB "
          f"(target <= {FOLDER_TARGET_MB} MB)")
    print(f"Archive {archived}: {archived.stat().st_size / MB:.1f} MB "
          f"(target <= {ARCHIVE_TARGET_MB} MB)")
    print("Largest files:")
    for size, path in files[:10]:
        print(f"  {size / MB:6.1f} MB  {path.relative_to(folder)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist",
                        help="where the app's folder and archive go (default dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller",
                        help="PyInstaller's work folder, emptied first (default build/pyinstaller)")
    args = parser.parse_args(argv)
    problem = check_environment()
    if problem:
        print(problem, file=sys.stderr)
        return 2
    from desktop_app import VERSION  # after the check: the environment is the app's

    started = time.monotonic()
    try:
        folder = build(args.dist.resolve(), args.work.resolve())
    except subprocess.CalledProcessError:
        print("PyInstaller could not build the app (its messages are above).", file=sys.stderr)
        return 1
    archived = archive(folder, VERSION)
    describe(folder, archived, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
