"""How people start this program, for sentences that tell them what to run."""

import sys

# The installable app (scripts/build_app.py) is one program of its own.
COMMAND = "SalesCSV" if getattr(sys, "frozen", False) else "python main.py"
