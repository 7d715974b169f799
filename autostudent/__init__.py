"""autostudent: search knowledge-distillation students against a fixed teacher.

    import autostudent
    study = autostudent.search("smoke", n_trials=4)
    study.front()

`search`, `load` and `Study` live in ``autostudent.api``; they are imported on first use, so
``import autostudent`` stays cheap (no torch, Ray or Optuna). No submodule may share their names:
Python binds a package attribute to every imported submodule, which would replace the function
(why the driver is ``driver.py``, not ``search.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from autostudent.api import Study, load, search

__version__ = "0.1.0"
__all__ = ["Study", "__version__", "load", "search"]
_API = ("Study", "load", "search")


def __getattr__(name: str) -> Any:
    if name in _API:
        from autostudent import api

        value = getattr(api, name)
        globals()[name] = value  # once: later lookups skip this hook
        return value
    raise AttributeError(f"module 'autostudent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
