"""The desktop window: pick a CSV, stream it to the server, read the totals."""

# The app's version, shown in Help > About.
VERSION = "1.1.0"

from pathlib import Path

# The window's icon (also the bundled app's): a sheet with a bar chart, 256 × 256.
ICON_PATH = Path(__file__).with_name("resources") / "icon.png"
