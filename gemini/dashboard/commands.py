"""`gemini dashboard --db URL`: serve the dashboard alone over a decision store.

Auth and prefix come from the environment: `GEMINI_DASHBOARD_TOKEN` (bearer token),
`GEMINI_DASHBOARD_TRUSTED_HEADER` (e.g. X-Forwarded-User set by an auth proxy),
`GEMINI_DASHBOARD_ROOT_PATH` (path prefix when served behind an Ingress that strips it).
Must not import `gemini.metrics`, `gemini.scalers` or `gemini.controller`.
"""

from __future__ import annotations

import os
import sys


def dashboard_command(db: str, port: int, host: str) -> int:
    import uvicorn

    from gemini.dashboard.app import create_app
    from gemini.store import StoreError, open_store

    try:
        store = open_store(db)
    except StoreError as exc:
        print(f"gemini dashboard: --db: {exc}", file=sys.stderr)
        return 1
    try:
        app = create_app(
            store,
            auth_token=os.environ.get("GEMINI_DASHBOARD_TOKEN") or None,
            trusted_header=os.environ.get("GEMINI_DASHBOARD_TRUSTED_HEADER") or None,
            root_path=os.environ.get("GEMINI_DASHBOARD_ROOT_PATH", ""),
        )
    except ValueError as exc:
        print(f"gemini dashboard: {exc}", file=sys.stderr)
        store.close()
        return 1
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=True)
    finally:
        store.close()
    return 0
