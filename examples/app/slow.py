"""A slow handler: about half a second per invocation."""

import time


def handler(event, context):
    started = time.monotonic()
    time.sleep(0.5)
    return {
        "message": "slow handler",
        "slept_ms": round((time.monotonic() - started) * 1000),
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
