"""Wall-clock time as the schema stores it: integer epoch milliseconds."""

from __future__ import annotations

import time


def now_epoch_ms() -> int:
    return int(time.time() * 1000)
