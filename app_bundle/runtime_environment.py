"""Runtime hook of the bundled app: the environment `python main.py` would have had (Linux).

- Programs the app starts get the user's library path. The launcher puts the bundle's library
  folder first on LD_LIBRARY_PATH (the user's value kept in LD_LIBRARY_PATH_ORIG). The dynamic
  linker has read it by the time Python runs, so the app needs it no more; but xdg-open and the
  user's spreadsheet (Open file, Show in folder) would inherit it, and the bundle's copies of
  libraries (SQLite, OpenSSL, ICU...) would be loaded in place of their own.
- A "C" locale becomes C.UTF-8, as the python command does (PEP 538) and as Qt otherwise would,
  with a warning, when the app runs from a service or `env -i` without LANG.
"""

import locale
import os
import sys

if sys.platform.startswith("linux"):
    _original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
    if _original is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = _original
    if "LC_ALL" not in os.environ:
        try:
            _ctype = locale.setlocale(locale.LC_CTYPE, "")  # the user's, as python sets it
        except locale.Error:  # LANG names a locale this system does not have
            _ctype = "C"
        if _ctype in ("C", "POSIX"):
            try:
                locale.setlocale(locale.LC_CTYPE, "C.UTF-8")
                os.environ["LC_CTYPE"] = "C.UTF-8"
            except locale.Error:  # a system without C.UTF-8 keeps its C locale
                pass
