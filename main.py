"""Sales CSV Processor: the desktop window (default), the headless server, a command-line upload."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from salesapi.client import DEFAULT_CHUNK_SIZE
from server.limits import DEFAULT_STORAGE_DIR, Limits

DEFAULT_PORT = 50051


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value.replace("_", ""))
    except ValueError:
        raise SystemExit(f"{name} must be a whole number, not \"{value}\".") from None


def _env_positive(name: str, default: float | None) -> float | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return _positive_number(value)
    except argparse.ArgumentTypeError as exc:
        raise SystemExit(f"{name}: {exc}.") from None


def _positive_number(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, not \"{text}\"")
    return seconds


def _server_config(args: argparse.Namespace):
    from server.app import ServerConfig
    from server.security import load_tls

    return ServerConfig(
        tls=load_tls(getattr(args, "tls_cert", None), getattr(args, "tls_key", None)),
        token=getattr(args, "serve_token", None) or None,
        storage_dir=Path(args.storage_dir),
        output_dir=Path(args.output_dir) if args.output_dir else None,
        limits=Limits(max_upload_bytes=args.max_upload_bytes,
                      max_departments=args.max_departments,
                      max_concurrent_uploads=args.max_concurrent_uploads,
                      max_field_bytes=args.max_field_bytes,
                      upload_idle_seconds=args.upload_idle_timeout),
        private_storage=not args.group_access,
        keep_days=args.keep_days,
    )


def _add_storage_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-dir", default=os.environ.get("STORAGE_DIR", DEFAULT_STORAGE_DIR),
                        help="job history and output folder (env STORAGE_DIR; default storage)")
    parser.add_argument("--output-dir", default=os.environ.get("OUTPUT_DIR") or None,
                        help="where output CSVs go (env OUTPUT_DIR; default STORAGE_DIR/processed)")
    defaults = Limits()
    parser.add_argument("--max-upload-bytes", type=int,
                        default=_env_int("MAX_UPLOAD_BYTES", defaults.max_upload_bytes),
                        help="largest accepted file (env MAX_UPLOAD_BYTES; default %(default)s)")
    parser.add_argument("--max-departments", type=int,
                        default=_env_int("MAX_DEPARTMENTS", defaults.max_departments),
                        help="most distinct departments per file (env MAX_DEPARTMENTS; "
                             "default %(default)s)")
    parser.add_argument("--max-concurrent-uploads", type=int,
                        default=_env_int("MAX_CONCURRENT_UPLOADS", defaults.max_concurrent_uploads),
                        help="uploads served at once (env MAX_CONCURRENT_UPLOADS; "
                             "default %(default)s)")
    parser.add_argument("--max-field-bytes", type=int,
                        default=_env_int("MAX_FIELD_BYTES", defaults.max_field_bytes),
                        help="longest row or field in bytes (env MAX_FIELD_BYTES; "
                             "default %(default)s)")
    parser.add_argument("--upload-idle-timeout", type=_positive_number,
                        default=_env_positive("UPLOAD_IDLE_TIMEOUT",
                                             defaults.upload_idle_seconds),
                        help="seconds an upload may send nothing before it is ended (env "
                             "UPLOAD_IDLE_TIMEOUT; default %(default)g)")
    parser.add_argument("--keep-days", type=_positive_number,
                        default=_env_positive("KEEP_DAYS", None),
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

    try:
        config = _server_config(args)
        check_exposure(args.host, config.tls, args.insecure)
        return serve(args.host, args.port, config)
    except (ServerStartError, SecurityError) as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code


def run_upload(args: argparse.Namespace) -> int:
    """Uploads one file to a running server and prints the totals."""
    from cli.upload_command import upload

    return upload(Path(args.file), args.server, args.chunk_size,
                  None if args.all else args.max_rows, token=args.token, ca_cert=args.ca_cert,
                  save=Path(args.save) if args.save else None,
                  save_rejected=Path(args.save_rejected) if args.save_rejected else None)


def run_results(args: argparse.Namespace) -> int:
    """jobs, download, delete: a server's history and results, from any machine."""
    from cli import results_commands as commands

    if args.command == "jobs":
        action = commands.jobs_command(args.limit)
    elif args.command == "download":
        action = commands.download_command(args.job_id, Path(args.output), args.rejected)
    else:
        action = commands.delete_command(args.job_id)
    return commands.run_with_stub(args.server, args.token, args.ca_cert, action)


def run_gui(args: argparse.Namespace) -> int:
    """Opens the desktop window."""
    # Imported here so that `serve` and `upload` never load Qt.
    from desktop_app.app import run_window

    return run_window(args, _server_config(args))


def build_parser() -> argparse.ArgumentParser:
    """The command line: gui (default), serve, upload, jobs, download, delete."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (env LOG_LEVEL; default INFO)")
    parser = argparse.ArgumentParser(
        prog="main.py", description=__doc__,
        epilog="With no command, or with a file name, the desktop window opens.")
    commands = parser.add_subparsers(title="commands",
                                     metavar="{gui,serve,upload,jobs,download,delete}",
                                     required=True)

    gui = commands.add_parser("gui", parents=[common], help="open the desktop window (default)")
    gui.add_argument("file", nargs="?", help="a CSV file to select at start")
    gui.add_argument("--server", help="use a running server at HOST:PORT instead of starting one")
    _add_storage_flags(gui)
    _add_client_security_flags(gui)
    gui.set_defaults(func=run_gui)

    serve = commands.add_parser("serve", parents=[common], help="run the gRPC server headless")
    serve.add_argument("--host", default=os.environ.get("GRPC_HOST", "127.0.0.1"),
                       help="address to bind (env GRPC_HOST; default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=_env_int("GRPC_PORT", DEFAULT_PORT),
                       help=f"port to bind, 0 for any free one (env GRPC_PORT; default {DEFAULT_PORT})")
    _add_storage_flags(serve)
    serve.add_argument("--tls-cert", help="PEM certificate chain: serve TLS")
    serve.add_argument("--tls-key", help="PEM private key of --tls-cert")
    serve.add_argument("--insecure", action="store_true",
                       help="allow plaintext on a non-loopback --host (a trusted network only)")
    serve.add_argument("--token", dest="serve_token", default=os.environ.get("SALES_TOKEN"),
                       help="require this token from every client (env SALES_TOKEN)")
    serve.set_defaults(func=run_serve)

    upload = commands.add_parser("upload", parents=[common], help="upload a CSV to a running server")
    upload.add_argument("file", help="the CSV file")
    upload.add_argument("--server", default=f"127.0.0.1:{DEFAULT_PORT}",
                        help=f"HOST:PORT of the server (default 127.0.0.1:{DEFAULT_PORT})")
    upload.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help=f"bytes per message (default {DEFAULT_CHUNK_SIZE})")
    upload.add_argument("--max-rows", type=int, default=100,
                        help="departments to print (default 100; the file has all)")
    upload.add_argument("--all", action="store_true", help="print every department")
    upload.add_argument("--save", metavar="PATH",
                        help="also write the totals CSV here (downloaded from the server)")
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
