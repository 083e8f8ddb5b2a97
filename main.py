"""Sales CSV Processor: the desktop window (default), the headless server, a command-line upload."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

# gRPC's C core logs connection details (a refused certificate, a closed socket) to stderr at
# INFO here; the commands say what went wrong in a sentence of their own. Before gRPC loads.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
# Arrow's C++ parts that allocate from its own default pool (grouping, among others) use glibc's
# malloc, which server/memory.py caps and trims, instead of mimalloc, which keeps what it frees
# per thread: a ~1,000,000-department upload peaked at 300 MiB instead of 378-420, and the idle
# server went back to within 11-32 MiB of its figure instead of 56-128 (bench/README.md). Arrow
# reads this once, as it loads: before anything imports it.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

from salesapi.client import DEFAULT_CHUNK_SIZE  # noqa: E402
from server.limits import DEFAULT_LEASE_SECONDS, DEFAULT_STORAGE_DIR, Limits  # noqa: E402
from wording.command import COMMAND  # noqa: E402

DEFAULT_PORT = 50051


class _Range:
    """An argparse type: a whole number from low to high (inclusive), with why it must be."""

    def __init__(self, low: int, high: int | None = None, why: str = "") -> None:
        self.low, self.high, self.why = low, high, why

    def __call__(self, text: str) -> int:
        try:
            value = int(str(text).replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, not \"{text}\"") from None
        if value < self.low or (self.high is not None and value > self.high):
            bounds = (f"from {self.low:,} to {self.high:,}" if self.high is not None
                      else f"of at least {self.low:,}")
            raise argparse.ArgumentTypeError(f"expected a number {bounds}{self.why}, not "
                                             f"{value:,}")
        return value


_PORT = _Range(0, 65535)
_AT_LEAST_ONE = _Range(1)
# A name may be as long as a row: every reply must still hold one (4 MB, less the rest).
_FIELD_BYTES = _Range(1024, 3 << 20, " (so that any name fits in a reply)")


def _from_env(name: str, default, kind):
    """The environment variable's value read as `kind` (an argparse type), or default; a bad
    value ends the program with a sentence and exit code 2, as a bad flag does."""
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return kind(value)
    except argparse.ArgumentTypeError as exc:
        print(f"{name}: {exc}.", file=sys.stderr)
        raise SystemExit(2) from None


def _positive_number(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        number = 0.0
    if not (number > 0 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"expected a number above 0, not \"{text}\"")
    return number


def _server_config(args: argparse.Namespace):
    from server.app import ServerConfig
    from server.security import load_tls

    return ServerConfig(
        tls=load_tls(getattr(args, "tls_cert", None), getattr(args, "tls_key", None)),
        token=getattr(args, "serve_token", None) or None,
        storage_dir=Path(args.storage_dir or DEFAULT_STORAGE_DIR),
        output_dir=Path(args.output_dir) if args.output_dir else None,
        limits=Limits(max_upload_bytes=args.max_upload_bytes,
                      max_departments=args.max_departments,
                      max_concurrent_uploads=args.max_concurrent_uploads,
                      max_field_bytes=args.max_field_bytes,
                      upload_idle_seconds=args.upload_idle_timeout),
        private_storage=not args.group_access,
        keep_days=args.keep_days,
        database=getattr(args, "database", None),
        lease_seconds=getattr(args, "lease_seconds", DEFAULT_LEASE_SECONDS),
    )


def _add_storage_flags(parser: argparse.ArgumentParser, window: bool = False) -> None:
    if window:  # the window's default is the user's data folder (desktop_app/app.py)
        parser.add_argument("--storage-dir", default=os.environ.get("STORAGE_DIR") or None,
                            help="job history and output folder (env STORAGE_DIR; default: "
                                 "this user's application data folder)")
    else:
        parser.add_argument("--storage-dir",
                            default=os.environ.get("STORAGE_DIR") or DEFAULT_STORAGE_DIR,
                            help="job history and output folder (env STORAGE_DIR; default "
                                 "storage)")
    parser.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR") or None,
                        help="where output CSVs go (env OUTPUT_DIR; default STORAGE_DIR/processed)")
    defaults = Limits()
    parser.add_argument("--max-upload-bytes", type=_AT_LEAST_ONE,
                        default=_from_env("MAX_UPLOAD_BYTES", defaults.max_upload_bytes, _AT_LEAST_ONE),
                        help="largest accepted file (env MAX_UPLOAD_BYTES; default %(default)s)")
    parser.add_argument("--max-departments", type=_AT_LEAST_ONE,
                        default=_from_env("MAX_DEPARTMENTS", defaults.max_departments, _AT_LEAST_ONE),
                        help="most distinct departments per file (env MAX_DEPARTMENTS; "
                             "default %(default)s)")
    parser.add_argument("--max-concurrent-uploads", type=_AT_LEAST_ONE,
                        default=_from_env("MAX_CONCURRENT_UPLOADS", defaults.max_concurrent_uploads, _AT_LEAST_ONE),
                        help="uploads served at once (env MAX_CONCURRENT_UPLOADS; "
                             "default %(default)s)")
    parser.add_argument("--max-field-bytes", type=_FIELD_BYTES,
                        default=_from_env("MAX_FIELD_BYTES", defaults.max_field_bytes, _FIELD_BYTES),
                        help="longest row or field in bytes (env MAX_FIELD_BYTES; "
                             "default %(default)s)")
    parser.add_argument("--upload-idle-timeout", type=_positive_number,
                        default=_from_env("UPLOAD_IDLE_TIMEOUT", defaults.upload_idle_seconds,
                                          _positive_number),
                        help="seconds an upload may send nothing before it is ended (env "
                             "UPLOAD_IDLE_TIMEOUT; default %(default)g)")
    parser.add_argument("--keep-days", type=_positive_number,
                        default=_from_env("KEEP_DAYS", None, _positive_number),
                        help="delete jobs (history and files) that ended more than this many "
                             "days ago, at start and once a day (env KEEP_DAYS; default: keep "
                             "every job)")
    parser.add_argument("--group-access", action="store_true",
                        default=os.environ.get("STORAGE_GROUP_ACCESS", "") not in ("", "0"),
                        help="let the server user's group read the history and outputs "
                             "(folders 0750, files 0640; env STORAGE_GROUP_ACCESS=1); by "
                             "default only the server's user can (0700, 0600)")


def _add_client_security_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--token", default=os.environ.get("SALES_TOKEN"),
                        help="access token the server asks for (env SALES_TOKEN)")
    parser.add_argument("--ca-cert", help="PEM certificate to trust: connect with TLS")


def run_serve(args: argparse.Namespace) -> int:
    """Runs the headless server."""
    from server.app import ServerStartError
    from server.security import SecurityError, check_exposure
    from server.serve import serve

    if not args.host.strip():
        print("--host (GRPC_HOST) is empty; give an address such as 127.0.0.1.", file=sys.stderr)
        return 2
    if args.serve_token is not None and not args.serve_token.strip():
        print("--token (SALES_TOKEN) is empty, which would let anyone in; give a token, or "
              "leave it out for a server without one.", file=sys.stderr)
        return 2
    try:
        config = _server_config(args)
        check_exposure(args.host, config.tls, args.insecure)
        return serve(args.host, args.port, config)
    except (ServerStartError, SecurityError) as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code


def run_upload(args: argparse.Namespace) -> int:
    """Uploads files to a running server and prints the totals (combined, for several)."""
    from cli.upload_command import upload, upload_several

    if len(args.files) > 1:
        return upload_several([Path(name) for name in args.files], args.server,
                              args.chunk_size, None if args.all else args.max_rows,
                              token=args.token, ca_cert=args.ca_cert,
                              save=Path(args.save) if args.save else None)
    return upload(Path(args.files[0]), args.server, args.chunk_size,
                  None if args.all else args.max_rows, token=args.token, ca_cert=args.ca_cert,
                  save=Path(args.save) if args.save else None,
                  save_rejected=Path(args.save_rejected) if args.save_rejected else None)


def run_results(args: argparse.Namespace) -> int:
    """jobs, download, delete: a server's history and results, from any machine."""
    from cli import results_commands as commands

    if args.command != "jobs" and not args.job_id.strip():
        print(f"Give a job id: 32 hexadecimal characters, as `{COMMAND} jobs` lists them.",
              file=sys.stderr)
        return 2
    if args.command == "jobs":
        action = commands.jobs_command(args.limit)
    elif args.command == "download":
        action = commands.download_command(args.job_id, Path(args.output), args.rejected)
    else:
        action = commands.delete_command(args.job_id)
    return commands.run_with_stub(args.server, args.token, args.ca_cert, action)


def _display_reachable() -> bool:
    """Whether Linux has a display to open the window on. A local X display or a Wayland
    socket that is named but not there would make Qt abort with a misleading message about
    libraries; so it counts as none."""
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    wayland = os.environ.get("WAYLAND_DISPLAY")
    if wayland and Path(os.environ.get("XDG_RUNTIME_DIR", "/run/user"), wayland).exists():
        return True
    display = os.environ.get("DISPLAY", "")
    if display.startswith(":"):  # local: its socket is there when a server listens
        number = display[1:].split(".")[0]
        return Path("/tmp/.X11-unix", f"X{number}").exists()
    return bool(display)  # host:N, over the network: Qt will say if it cannot connect


def run_gui(args: argparse.Namespace) -> int:
    """Opens the desktop window."""
    if sys.platform.startswith("linux") and not _display_reachable():
        print("There is no display here to show the window on. Without one, run the server "
              f"with `{COMMAND} serve`, or process a file with `{COMMAND} upload "
              "FILE`.", file=sys.stderr)
        return 2
    # Imported here so that `serve` and `upload` never load Qt.
    from desktop_app.app import run_window

    return run_window(args, _server_config(args))


def build_parser() -> argparse.ArgumentParser:
    """The command line: gui (default), serve, upload, jobs, download, delete."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (env LOG_LEVEL; default INFO)")
    parser = argparse.ArgumentParser(
        prog=COMMAND.removeprefix("python "), description=__doc__,
        epilog="With no command, or with a file name, the desktop window opens.")
    commands = parser.add_subparsers(title="commands",
                                     metavar="{gui,serve,upload,jobs,download,delete}",
                                     required=True)

    gui = commands.add_parser("gui", parents=[common], help="open the desktop window (default)")
    gui.add_argument("files", nargs="*", metavar="FILE",
                     help="CSV files (or a folder of them) to choose at start")
    gui.add_argument("--server", help="use a running server at HOST:PORT instead of starting one")
    _add_storage_flags(gui, window=True)
    _add_client_security_flags(gui)
    gui.set_defaults(func=run_gui)

    serve = commands.add_parser("serve", parents=[common], help="run the gRPC server headless")
    serve.add_argument("--host", default=os.environ.get("GRPC_HOST", "127.0.0.1"),
                       help="address to bind (env GRPC_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=_PORT, default=_from_env("GRPC_PORT", DEFAULT_PORT, _PORT),
                       help=f"port to bind, 0 for any free one (env GRPC_PORT; default {DEFAULT_PORT})")
    _add_storage_flags(serve)
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument("--insecure", action="store_true",
                       help="allow plaintext on a non-loopback --host (a trusted network only)")
    serve.add_argument("--token", dest="serve_token",
                       default=os.environ.get("SALES_TOKEN") or None,
                       help="require this token from every client (env SALES_TOKEN)")
    serve.add_argument("--database", default=os.environ.get("DATABASE_URL") or None,
                       help="the job history: sqlite:///PATH, or postgresql://USER@HOST/DB to "
                            "share it between several servers with one OUTPUT_DIR (env "
                            "DATABASE_URL; default STORAGE_DIR/jobs.sqlite3)")
    serve.add_argument("--lease-seconds", type=_positive_number,
                       default=_from_env("LEASE_SECONDS", DEFAULT_LEASE_SECONDS, _positive_number),
                       help="with a shared database: a server silent this long is taken for "
                            "gone and its running uploads marked FAILED by the others (env "
                            "LEASE_SECONDS; default %(default)g)")
    serve.set_defaults(func=run_serve)

    upload = commands.add_parser("upload", parents=[common], help="upload a CSV to a running server")
    upload.add_argument("files", nargs="+", metavar="FILE",
                        help="the CSV file; several files are added up side by side")
    upload.add_argument("--server", default=f"127.0.0.1:{DEFAULT_PORT}",
                        help=f"HOST:PORT of the server (default 127.0.0.1:{DEFAULT_PORT})")
    upload.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help=f"bytes per message (default {DEFAULT_CHUNK_SIZE})")
    upload.add_argument("--max-rows", type=int, default=100,
                        help="departments to print (default 100; the file has all)")
    upload.add_argument("--all", action="store_true", help="print every department")
    upload.add_argument("--save", metavar="PATH",
                        help="also write the totals here: .xlsx an Excel workbook, else CSV "
                             "(several files: their combined table)")
    upload.add_argument("--save-rejected", metavar="PATH",
                        help="also write the rejected rows here, if any")
    _add_client_security_flags(upload)
    upload.set_defaults(func=run_upload)

    for name, summary in (("jobs", "list a server's jobs, newest first"),
                          ("download", "save a job's totals (or rejected rows) file"),
                          ("delete", "delete a job, its files and its history entry")):
        command = commands.add_parser(name, parents=[common], help=summary)
        if name in ("download", "delete"):
            command.add_argument("job_id", help="the job id (32 hexadecimal characters)")
        if name == "download":
            command.add_argument("-o", "--output", required=True, metavar="PATH",
                                 help="where to write the file")
            command.add_argument("--rejected", action="store_true",
                                 help="the rejected-rows file instead of the totals")
        if name == "jobs":
            command.add_argument("--limit", type=int, default=0,
                                 help="at most this many jobs (default: the server's, 100)")
        command.add_argument("--server", default=f"127.0.0.1:{DEFAULT_PORT}",
                             help=f"HOST:PORT of the server (default 127.0.0.1:{DEFAULT_PORT})")
        _add_client_security_flags(command)
        command.set_defaults(func=run_results, command=name)
    return parser


_COMMANDS = ("gui", "serve", "upload", "jobs", "download", "delete")


def main(argv: list[str] | None = None) -> int:
    """Parses the command line and runs the chosen command."""
    argv = sys.argv[1:] if argv is None else argv
    # No command, or `python main.py FILE` / `python main.py --server ...`: the window.
    if not argv or (argv[0] not in _COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["gui", *argv]
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if getattr(args, "chunk_size", 1) <= 0:
        print("--chunk-size must be a positive number of bytes.", file=sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
