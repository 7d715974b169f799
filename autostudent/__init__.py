"""autostudent: search knowledge-distillation students against a fixed teacher."""

from __future__ import annotations

__version__ = "0.1.0"
