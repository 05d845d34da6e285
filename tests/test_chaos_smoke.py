"""The chaos script, small: it must keep working (the full run is documented)."""

from __future__ import annotations

from bench.chaos import run


def test_chaos_script_small_run() -> None:
    result = run(workflows=16, steps=3, kill_every=0.5, timeout=120, concurrency=2)
    assert result["completed"] == 16
    assert result["lost"] == 0
    assert result["duplicated"] <= result["kills"] * result["concurrency"]
