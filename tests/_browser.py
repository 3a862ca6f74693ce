"""Headless Chromium settings shared by the browser tests and the page benchmark."""

from __future__ import annotations

import socket
from pathlib import Path

#: Debian's Chromium (package ``chromium``); never a browser downloaded by a test tool.
CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a closed network: without the background-networking ones Chromium keeps
#: trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
