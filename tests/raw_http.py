"""A raw HTTP exchange over one socket, for tests of what a server does with slow, odd or broken requests."""

from __future__ import annotations

import socket
import time


def exchange(address: tuple[str, int], pieces: list[bytes], pause: float = 0.0) -> tuple[bytes, float]:
    """Send `pieces` `pause` seconds apart, then read until the server closes; (reply, seconds taken)."""
    started = time.monotonic()
    with socket.create_connection(address, timeout=10) as conn:
        for piece in pieces:
            time.sleep(pause)
            try:
                conn.sendall(piece)
            except OSError:  # the server has answered and closed
                break
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    return reply, time.monotonic() - started
