"""Runs the built app as a user's machine would, and says whether it works and how fast it starts.

Run it after `scripts/build_app.py`: `.venv/bin/python scripts/check_bundle.py`. It unpacks the
archive into a fresh folder and runs the launcher from there with nothing of this machine's
environment but HOME (a fresh one, so a fresh storage folder) and DISPLAY (its own Xvfb): no
PATH, no virtual environment. It checks that
- without a display, the app says so in a sentence;
- the window opens with a sample file chosen (`SalesCSV FILE`), Enter processes it, and the
  output file in the user's data folder holds the right totals (computed here, independently);
  the running app maps no library from this machine's Python or the source tree;
- `SalesCSV serve` answers an upload from `SalesCSV upload`, and stops cleanly on SIGTERM;
- no output anywhere holds a traceback;
and it prints how long the window took to show (twice: a fresh and a used storage folder), the
same for `python main.py` from the source tree, and the sizes, against their targets.
Linux only: it needs Xvfb, xdotool and xprop (`apt-get install xvfb xdotool x11-utils`).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from build_app import (ARCHIVE_TARGET_MB, FOLDER_TARGET_MB, MB, NAME,  # noqa: E402
                       files_by_size)

WINDOW_TITLE = "Sales CSV Processor"
BUNDLE_WINDOW_TARGET_S = 3.0
SOURCE_WINDOW_TARGET_S = 2.0
TRACEBACK = "Traceback (most recent call last)"
# Where the window keeps its files on Linux (QStandardPaths' AppDataLocation, README).
WINDOW_STORAGE = Path(".local", "share", "Sales CSV Processor")
OUTPUT_NAME = re.compile(r"[0-9a-f]{32}\.csv")
ICON = ROOT / "desktop_app" / "resources" / "icon.png"


class CheckFailed(Exception):
    """A check that did not pass; the message says what was seen."""


# -- the sample file ---------------------------------------------------------------------------

DEPARTMENTS = ["Electronics", "Clothing", "Home & Garden", "Toys, Games", "Café & Bakery",
               "Books", "garden", "Sports"]


def write_sample(path: Path) -> dict[str, int]:
    """A small realistic export (CRLF, a quoted comma, a non-ASCII name, a return, a bad row)
    and the totals it must give, computed here with the csv module alone."""
    rng = random.Random(2026)
    rows = [["Date", "Department Name", "Number of Sales"]]
    for index in range(6000):
        rows.append([f"2026-03-{index % 28 + 1:02d}", rng.choice(DEPARTMENTS),
                     str(rng.randint(-2, 40))])
    rows.insert(1234, ["2026-03-05", "Toys, Games", "twelve"])
    text = io.StringIO(newline="")
    csv.writer(text, lineterminator="\r\n").writerows(rows)
    path.write_text(text.getvalue(), encoding="utf-8", newline="")
    totals: dict[str, int] = {}
    for _date, department, sales in rows[1:]:
        if re.fullmatch(r"-?\d+", sales):
            totals[department] = totals.get(department, 0) + int(sales)
    return totals


def read_totals_file(path: Path) -> list[tuple[str, int]]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows or rows[0] != ["Department Name", "Total Number of Sales"]:
        raise CheckFailed(f"{path.name} does not start with the output header: {rows[:1]}")
    return [(name, int(total)) for name, total in rows[1:]]


def compare_totals(what: str, got: list[tuple[str, int]], expected: dict[str, int]) -> str:
    """A line saying the totals match, or CheckFailed saying how they differ."""
    if dict(got) != expected:
        raise CheckFailed(f"{what}: totals differ: got {dict(got)}, expected {expected}")
    names = [name for name, _ in got]
    if names != sorted(names, key=lambda name: (name.lower(), name)):
        raise CheckFailed(f"{what}: departments out of order: {names}")
    return (f"{what}: {len(got)} departments, {sum(expected.values()):,} sales in all, "
            "every total right")


# -- processes ---------------------------------------------------------------------------------

class Xvfb:
    """A virtual screen of our own, so the check needs no desktop and sees only its windows."""

    def __init__(self) -> None:
        read_end, write_end = os.pipe()
        self.process = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1600x1000x24",
             "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.process.kill()
            raise CheckFailed("Xvfb did not start")
        self.display = f":{number}"

    def xdotool(self, *args: str, check: bool = True) -> str:
        try:
            result = subprocess.run(["xdotool", *args], capture_output=True, text=True,
                                    env={**os.environ, "DISPLAY": self.display}, timeout=30)
        except subprocess.TimeoutExpired:
            raise CheckFailed(f"xdotool {' '.join(args)} did not answer within 30 s") from None
        if check and result.returncode != 0:
            raise CheckFailed(f"xdotool {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class Run:
    """One launch of a program, its output kept in a file."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.command, self.log = command, log
        self._log_file = open(log, "wb")
        self.started = time.monotonic()
        self.process = subprocess.Popen(command, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                                        stdout=self._log_file, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait(self, seconds: float) -> int:
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.kill()
            raise CheckFailed(f"{' '.join(self.command[-2:])} still running after {seconds:.0f} s; "
                              f"its output:\n{self.output()}") from None
        finally:
            self._log_file.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


def process_tree(pid: int) -> list[int]:
    """pid and its descendants (the launcher runs the app in a child process)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def mapped_files(pids: list[int]) -> set[str]:
    """The files the processes have mapped: their programs, libraries and data files."""
    files = set()
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/maps").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].startswith("/"):
                files.add(fields[5])
    return files


def check_isolation(run: Run, folder: Path) -> str:
    """The running app's libraries come from its folder or the system, never from this
    machine's Python, its virtual environment or the source tree."""
    files = mapped_files(process_tree(run.process.pid))
    foreign_roots = {str(Path(p).resolve()) for p in (ROOT, sys.prefix, sys.base_prefix)}
    foreign = sorted(path for path in files
                     if any(path.startswith(root + "/") for root in foreign_roots)
                     or "site-packages" in path)
    if foreign:
        raise CheckFailed("the app loaded files from outside its folder:\n  "
                          + "\n  ".join(foreign[:20]))
    own = [path for path in files if path.startswith(str(folder) + "/")]
    libpython = [path for path in own if "libpython" in path]
    if not libpython:
        raise CheckFailed("the app did not map a libpython of its own folder")
    return (f"isolation: {len(own)} files mapped from the app's folder (Python: "
            f"{Path(libpython[0]).name}), {len(files) - len(own)} from the system, none from "
            f"this machine's Python ({sys.base_prefix}) or the source tree")


# -- the window ----------------------------------------------------------------------------------

def wait_for_window(screen: Xvfb, run: Run, timeout: float = 30.0) -> tuple[str, float]:
    """The main window's id once it is shown, and the seconds from launch to then."""
    while time.monotonic() - run.started < timeout:
        for window in screen.xdotool("search", "--onlyvisible", "--name",
                                     f"^{re.escape(WINDOW_TITLE)}$", check=False).split():
            seen = time.monotonic() - run.started
            shape = dict(line.split("=", 1) for line in screen.xdotool(
                "getwindowgeometry", "--shell", window, check=False).split())
            if int(shape.get("WIDTH", 0)) >= 600:  # the window, not a message box
                return window, seen
            raise CheckFailed(f"a message box showed instead of the window; output:\n"
                              f"{run.output()}")
        if run.process.poll() is not None:
            raise CheckFailed(f"exited {run.process.returncode} before its window showed; "
                              f"output:\n{run.output()}")
        time.sleep(0.02)
    run.kill()
    raise CheckFailed(f"no window within {timeout:.0f} s; output:\n{run.output()}")


def check_icon(screen: Xvfb, window: str) -> str:
    """The window carries the app's icon: desktop_app.ICON_PATH resolved inside the bundle."""
    width, height = struct.unpack(">II", ICON.read_bytes()[16:24])  # the PNG's IHDR
    result = subprocess.run(["xprop", "-id", window, "-len", "8", "_NET_WM_ICON"],
                            capture_output=True, text=True,
                            env={**os.environ, "DISPLAY": screen.display})
    if f"Icon ({width} x {height})" not in result.stdout:
        raise CheckFailed(f"the window has no {width} x {height} icon: {result.stdout.strip()}")
    return f"icon: the window shows desktop_app/resources/icon.png ({width} x {height})"


def close_window(screen: Xvfb, run: Run, window: str) -> None:
    """Ctrl+Q, as a user would quit; the app must end by itself with status 0."""
    screen.xdotool("windowfocus", "--sync", window)
    screen.xdotool("key", "--clearmodifiers", "ctrl+q")
    status = run.wait(20)
    if status != 0:
        raise CheckFailed(f"the window exited {status} after Ctrl+Q; output:\n{run.output()}")


def wait_for_output(folder: Path, timeout: float = 60.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [path for path in folder.glob("*.csv") if OUTPUT_NAME.fullmatch(path.name)]
        if done:
            return done[0]
        time.sleep(0.1)
    raise CheckFailed(f"no output file in {folder} within {timeout:.0f} s")


def window_run(screen: Xvfb, command: list[str], home: Path, work: Path, label: str,
               sample: Path | None = None, expected: dict[str, int] | None = None,
               folder: Path | None = None, screenshot: Path | None = None) -> tuple[float, list[str]]:
    """Launches the window (with sample chosen, then processes it with Enter when expected is
    given); returns the seconds until it showed and what was checked."""
    env = {"HOME": str(home), "DISPLAY": screen.display}
    run = Run(command + ([str(sample)] if sample else []), env, work,
              work / f"{label.replace(' ', '-')}.log")
    notes = []
    try:
        window, seconds = wait_for_window(screen, run)
        if expected is not None:
            notes.append(check_icon(screen, window))
            screen.xdotool("windowfocus", "--sync", window)
            screen.xdotool("key", "--clearmodifiers", "Return")
            output = wait_for_output(home / WINDOW_STORAGE / "processed")
            notes.append(compare_totals(f"window ({output.parent.relative_to(home)}/"
                                        f"{output.name})", read_totals_file(output), expected))
            time.sleep(1.0)  # the reply reaches the window just after the file is renamed
            if folder is not None:
                notes.append(check_isolation(run, folder))
            if screenshot is not None and shutil.which("import"):
                subprocess.run(["import", "-window", window, str(screenshot)],
                               env={**os.environ, "DISPLAY": screen.display}, check=False)
                notes.append(f"screenshot: {screenshot}")
        close_window(screen, run, window)
    finally:
        run.kill()
    if TRACEBACK in run.output():
        raise CheckFailed(f"{label}: a traceback in the output:\n{run.output()}")
    return seconds, notes


# -- the folder ----------------------------------------------------------------------------------

def folder_contents(folder: Path, archive: Path, work: Path) -> list[str]:
    """What the issue says the folder carries: the icon where desktop_app.ICON_PATH looks for
    it, the version (in the archive's name; the window's Help > About shows it), and a desktop
    entry that install-shortcut.sh points at wherever the folder was unpacked."""
    from desktop_app import VERSION

    icon = folder / "_internal" / "desktop_app" / "resources" / "icon.png"
    if not icon.is_file() or icon.read_bytes() != ICON.read_bytes():
        raise CheckFailed(f"{icon} is missing or differs from {ICON}")
    if f"-{VERSION}-" not in archive.name:
        raise CheckFailed(f"{archive.name} does not carry the version {VERSION}")
    home = work / "shortcut-home"
    home.mkdir()
    result = subprocess.run(["sh", str(folder / "install-shortcut.sh")], capture_output=True,
                            text=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    entry = home / ".local" / "share" / "applications" / "sales-csv.desktop"
    if result.returncode != 0 or not entry.is_file():
        raise CheckFailed(f"install-shortcut.sh failed: {result.stdout}{result.stderr}")
    fields = dict(line.split("=", 1) for line in entry.read_text().splitlines() if "=" in line)
    launcher = fields["Exec"].rsplit(" ", 1)[0].strip('"')
    if launcher != str(folder / NAME) or not Path(fields["Icon"]).is_file():
        raise CheckFailed(f"the desktop entry points at {fields['Exec']} and {fields['Icon']}")
    return [f"folder: icon at _internal/desktop_app/resources/icon.png, version {VERSION} in "
            f"{archive.name}, needs glibc {needed_glibc(folder)} or newer",
            f"install-shortcut.sh: menu entry runs {fields['Exec']}"]


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def needed_glibc(folder: Path) -> str:
    """The newest glibc symbol version any program or library in the folder asks for."""
    binaries = [str(path) for path in folder.rglob("*")
                if path.is_file() and not path.is_symlink() and _is_elf(path)]
    symbols = subprocess.run(["objdump", "-T", *binaries], capture_output=True,
                             text=True).stdout
    versions = {tuple(map(int, found.split("."))) for found
                in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", symbols)}
    return ".".join(map(str, max(versions)))


# -- the commands --------------------------------------------------------------------------------

def no_display_run(launcher: Path, home: Path, work: Path) -> str:
    run = Run([str(launcher)], {"HOME": str(home)}, work, work / "no-display.log")
    status = run.wait(30)
    said = run.output().strip()
    if status != 2 or "no display" not in said or TRACEBACK in said:
        raise CheckFailed(f"without a display: exit {status}, said:\n{said}")
    return f"without a display: exit 2, \"{said.splitlines()[0][:70]}...\""


def serve_and_upload(launcher: Path, sample: Path, expected: dict[str, int], home: Path,
                     work: Path) -> list[str]:
    """`SalesCSV serve` on a free port, `SalesCSV upload` to it, then SIGTERM."""
    env = {"HOME": str(home)}
    serve = subprocess.Popen([str(launcher), "serve", "--port", "0", "--storage-dir",
                              str(work / "server-storage")],
                             env=env, cwd=work, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    lines: list[str] = []
    errors: list[str] = []
    threading.Thread(target=lambda: errors.extend(serve.stderr), daemon=True).start()
    reader = threading.Thread(target=lambda: lines.extend(serve.stdout), daemon=True)
    reader.start()
    try:
        while not any("listening on" in line for line in lines):
            if serve.poll() is not None or time.monotonic() - started > 30:
                raise CheckFailed(f"serve did not start: {''.join(lines + errors)}")
            time.sleep(0.02)
        listening = next(line for line in lines if "listening on" in line).strip()
        ready = time.monotonic() - started
        port = re.search(r"listening on [^:]+:(\d+)", listening)[1]
        upload = subprocess.run([str(launcher), "upload", str(sample), "--server",
                                 f"127.0.0.1:{port}", "--all"], env=env, cwd=work,
                                capture_output=True, text=True, timeout=60)
        said = upload.stdout + upload.stderr
        if upload.returncode != 0 or TRACEBACK in said:
            raise CheckFailed(f"upload exited {upload.returncode}:\n{said}")
        table = upload.stdout.split("\n\n", 1)[0].splitlines()[1:]
        totals = [(name, int(total.replace(",", ""))) for name, total
                  in (line.rsplit(None, 1) for line in table)]
        notes = [f"serve: \"{listening}\" after {ready:.2f} s",
                 compare_totals("upload's table", totals, expected)]
        # Two files side by side, saved as a workbook (XlsxWriter must be in the folder).
        workbook = work / "combined.xlsx"
        both = subprocess.run([str(launcher), "upload", str(sample), str(sample), "--server",
                               f"127.0.0.1:{port}", "--save", str(workbook)], env=env,
                              cwd=work, capture_output=True, text=True, timeout=60)
        said = both.stdout + both.stderr
        if both.returncode != 0 or TRACEBACK in said or not zipfile.is_zipfile(workbook):
            raise CheckFailed(f"upload of two files to a workbook exited {both.returncode}:"
                              f"\n{said}")
        notes.append(f"upload of two files: {workbook.name} written "
                     f"({workbook.stat().st_size:,} bytes, a workbook)")
        serve.send_signal(signal.SIGTERM)
        status = serve.wait(20)
        reader.join(5)
        if status != 0 or TRACEBACK in "".join(lines + errors):
            raise CheckFailed(f"serve exited {status} on SIGTERM:\n{''.join(lines + errors)}")
        notes.append("serve: stopped on SIGTERM with exit 0")
        return notes
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()


# -- putting it together -------------------------------------------------------------------------

def unpack(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="tar")
    return into / NAME


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist",
                        help="where build_app.py put the folder and the archive (default dist/)")
    parser.add_argument("--screenshot", type=Path, help="save the window after processing here "
                        "(needs ImageMagick's import)")
    parser.add_argument("--strict-time", action="store_true",
                        help="fail when a start-up time misses its target (by default it is "
                             "printed: a busy machine is slower)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and say where")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("check_bundle.py runs on Linux only (Xvfb, xdotool, /proc).", file=sys.stderr)
        return 2
    missing = [tool for tool in ("Xvfb", "xdotool", "xprop") if not shutil.which(tool)]
    archives = sorted(args.dist.glob(f"{NAME}-*.tar.gz"))
    built = args.dist / NAME
    if missing:
        print(f"Install {', '.join(missing)} first (apt-get install xvfb xdotool x11-utils).",
              file=sys.stderr)
        return 2
    if not (built / NAME).exists() or len(archives) != 1:
        print(f"No built app in {args.dist}; run scripts/build_app.py first.", file=sys.stderr)
        return 2

    folder_mb = sum(size for size, _ in files_by_size(built)) / MB
    archive_mb = archives[0].stat().st_size / MB
    work = Path(tempfile.mkdtemp(prefix="check-bundle-"))
    screen = None
    failures: list[str] = []
    times: dict[str, float] = {}
    try:
        started = time.monotonic()
        folder = unpack(archives[0], work / "unpacked").resolve()
        launcher = folder / NAME
        print(f"Unpacked {archives[0].name} into {folder} in {time.monotonic() - started:.1f} s; "
              f"every run: env -i HOME=<fresh folder> [DISPLAY=<own Xvfb>], cwd {work}")
        sample = work / "march sales.csv"
        expected = write_sample(sample)
        home = work / "home"
        home.mkdir()
        screen = Xvfb()
        steps = [
            ("folder", lambda: folder_contents(folder, archives[0], work)),
            ("no display", lambda: [no_display_run(launcher, home, work)]),
            ("window, first launch", lambda: _timed(
                times, "bundle, first launch (fresh storage)", window_run(
                    screen, [str(launcher)], home, work, "window first", sample, expected,
                    folder, args.screenshot))),
            ("window, second launch", lambda: _timed(
                times, "bundle, second launch (same storage)", window_run(
                    screen, [str(launcher)], home, work, "window second"))),
            ("serve and upload", lambda: serve_and_upload(launcher, sample, expected,
                                                          work / "home", work)),
            ("python main.py", lambda: _source_runs(screen, work, times)),
        ]
        for name, step in steps:
            try:
                for note in step():
                    print(f"  ok  {note}")
            except CheckFailed as exc:
                failures.append(name)
                print(f"  FAILED  {name}: {exc}")
    finally:
        if screen is not None:
            screen.close()
        if args.keep:
            print(f"Work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    print("Targets:")
    print(f"  folder   {folder_mb:6.1f} MB   target <= {FOLDER_TARGET_MB} MB   "
          f"{verdict(folder_mb <= FOLDER_TARGET_MB)}")
    print(f"  archive  {archive_mb:6.1f} MB   target <= {ARCHIVE_TARGET_MB} MB   "
          f"{verdict(archive_mb <= ARCHIVE_TARGET_MB)}")
    slow = []
    for label, seconds in times.items():
        target = BUNDLE_WINDOW_TARGET_S if label.startswith("bundle") else SOURCE_WINDOW_TARGET_S
        print(f"  window shown {seconds:5.2f} s   target <= {target:.0f} s   "
              f"{verdict(seconds <= target)}   {label}")
        if seconds > target:
            slow.append(label)
    if folder_mb > FOLDER_TARGET_MB or archive_mb > ARCHIVE_TARGET_MB:
        failures.append("size")
    if slow and args.strict_time:
        failures.append("start-up time")
    if failures:
        print(f"check_bundle: FAILED ({', '.join(failures)})")
        return 1
    print("check_bundle: all checks passed" + (" (start-up time over target: see above)"
                                               if slow else ""))
    return 0


def _timed(times: dict[str, float], label: str, result: tuple[float, list[str]]) -> list[str]:
    seconds, notes = result
    times[label] = seconds
    return [f"{label}: window shown after {seconds:.2f} s", *notes]


def _source_runs(screen: Xvfb, work: Path, times: dict[str, float]) -> list[str]:
    """`python main.py` from the source tree, timed the same way, for comparison."""
    home = work / "source-home"
    home.mkdir()
    command = [sys.executable, str(ROOT / "main.py")]
    notes = []
    for launch in ("first launch (fresh storage)", "second launch (same storage)"):
        label = f"python main.py, {launch}"
        notes += _timed(times, label, window_run(screen, command, home, work,
                                                 "source " + launch.split()[0]))
    return notes


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
