"""Task ids as the Rust side makes them: UUIDv7, so ids sort by creation time in logs and
stores (the standard library has no uuid7 before Python 3.14)."""

from __future__ import annotations

import os
import time
import uuid


def new_task_id() -> str:
    milliseconds = time.time_ns() // 1_000_000
    value = (milliseconds & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=value))
