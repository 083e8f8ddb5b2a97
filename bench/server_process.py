"""A server in a child process, its address read from the line it prints once it listens: the
tests' and the benchmark's one way of running `python main.py serve` (or another server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ServerProcess:
    """Starts `command` and waits for its `... listening on HOST:PORT` line."""

    def __init__(self, command: list[str], env: dict | None = None,
                 keep_stderr: bool = True) -> None:
        """keep_stderr=False sends the server's log to /dev/null (a long benchmark run would
        fill the pipe)."""
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if keep_stderr else subprocess.DEVNULL, text=True, cwd=ROOT,
            env={**os.environ, **(env or {})})
        line = self.process.stdout.readline()  # blocks until the server listens or exits
        if "listening on" not in line:
            self.process.kill()
            errors = self.process.stderr.read() if keep_stderr else ""
            raise RuntimeError(f"the server did not start: {line!r} {errors}")
        self.address = line.split("listening on ")[1].split()[0]
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)

    @classmethod
    def serve(cls, storage_dir: Path, *extra: str, env: dict | None = None,
              keep_stderr: bool = True) -> "ServerProcess":
        """`python main.py serve` on a free loopback port with its own storage folder."""
        return cls([sys.executable, str(ROOT / "main.py"), "serve", "--port", "0",
                    "--storage-dir", str(storage_dir), *extra], env=env, keep_stderr=keep_stderr)

    def peak_mib(self) -> float:
        """The process's peak resident memory so far (VmHWM), in MiB."""
        return self._status_mib("VmHWM")

    def resident_mib(self) -> float:
        """The process's resident memory now (VmRSS), in MiB."""
        return self._status_mib("VmRSS")

    def _status_mib(self, field: str) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        kib = next(int(line.split()[1]) for line in status.splitlines()
                   if line.startswith(field))
        return kib / 1024

    def stop(self, graceful: bool = False) -> None:
        """Ends the process: SIGTERM and a clean stop if graceful, else SIGKILL."""
        if self.process.poll() is None:
            if graceful:
                self.process.terminate()
            else:
                self.process.kill()
        self.process.wait(timeout=60)
        self.process.stdout.close()
        if self.process.stderr is not None:
            self.process.stderr.close()
