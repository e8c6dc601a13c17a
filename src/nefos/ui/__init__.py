"""The web UI: static assets (no build step) that run in the browser as a plain client of
nefos's public APIs, with the signed-in user's token.

The server side is only this: where the assets live and the URL they are served at. The
shell page, the login and the hand-off of the token to the page belong to the web login
(``nefos.identity.web``), which owns the browser session. ``docs/ui.md`` tells the rest.
"""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).with_name("static")
ASSETS = "/ui/assets"  # under the web login's /ui, so its pages' security headers apply
