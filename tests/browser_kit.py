"""Headless Debian Chromium for the browser tests (the ``browser`` fixture is in conftest).

Screenshots are kept in test-artifacts/screenshots/ for people to look at.
The flags keep Chromium off the network it cannot reach here (background
services, updates, sync), as the machine's notes ask.
"""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
