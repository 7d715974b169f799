"""Where autostudent keeps what it computes once (teacher outputs, decoded image folders, teacher
files and arrays given from Python): ``cache_dir:`` in a study, else ``$AUTOSTUDENT_CACHE``,
else ``~/.cache/autostudent``."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("AUTOSTUDENT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "autostudent"
