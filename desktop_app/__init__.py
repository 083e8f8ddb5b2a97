"""The desktop window: pick a CSV, stream it to the server, read the totals."""
