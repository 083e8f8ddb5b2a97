"""Sentences and numbers as people read them, shared by the window and the command line."""
