"""Access to the data files shipped inside ``normalizer/data``.

Every loader in the package goes through :func:`read_data_text`, which reads a
file of this package (never anything else) through :mod:`importlib.resources`,
so it works from a source tree, an installed wheel or a zip.  Callers wrap it
in :func:`functools.cache` so each file is read once, on first use, and never
at import time.
"""

from __future__ import annotations

import gzip
from importlib import resources


def read_data_text(name: str) -> str:
    """Return the UTF-8 text of ``normalizer/data/<name>``, gunzipped when it ends in .gz."""
    raw = resources.files("normalizer").joinpath("data").joinpath(name).read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return raw.decode("utf-8")
