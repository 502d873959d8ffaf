"""The read-only dashboard over the decision store: `create_app` (Starlette) and its command.

Must not import `gemini.metrics`, `gemini.scalers` or `gemini.controller`.
"""

from __future__ import annotations

from gemini.dashboard.app import create_app

__all__ = ["create_app"]
