"""Run a test body on several Python threads at once, failures reported on the caller."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(body: Callable[[int], None], n: int) -> None:
    """``body(k)`` for k in range(n), each on its own thread, all started before any is joined;
    re-raises the first exception any of them raised (a thread's own would only be printed)."""
    errors: list[BaseException] = []

    def guarded(k: int) -> None:
        try:
            body(k)
        except BaseException as exc:  # noqa: BLE001 - re-raised on the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
