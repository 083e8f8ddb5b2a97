"""The command line's commands other than the window (see main.py)."""
