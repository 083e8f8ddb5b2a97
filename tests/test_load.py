"""A short run of bench/load.py against a real `serve`: right totals, nothing grows."""

import io

from bench.load import run_load


def test_short_load_run(serve_process):
    serve = serve_process()
    report = io.StringIO()
    ok = run_load(serve.address, serve.process.pid, clients=3, uploads=4, rounds=3, seconds=240,
                  out=report)
    assert ok, report.getvalue()
    assert "all checks held" in report.getvalue()
