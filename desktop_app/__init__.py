"""The desktop window: pick a CSV, stream it to the server, read the totals."""

# The app's version, shown in Help > About.
VERSION = "1.1.0"
