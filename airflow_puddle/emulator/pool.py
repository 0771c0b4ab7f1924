"""The threads the emulator's RPC handlers run on: a few runners, and a stand-in for each sleeper.

The handlers are Python and hold the GIL, so more threads do not answer more calls: on a
2-core machine 4 runners answered about a third more GetSystem calls per second than 16, which
spent the difference handing the GIL and the work queue around. But a handler that sleeps in
injected latency must not hold one of so few places, or four slow calls would stall every
other one: :meth:`HandlerPool.lend` gives its place to a new runner while it sleeps (as a
fork-join pool's managed blocker does), and a runner beyond the count leaves once the sleepers
are back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

_Work = tuple[futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class HandlerPool(futures.Executor):
    """An executor with ``runners`` threads working, plus one for each handler inside :meth:`lend`, up to ``limit``."""

    def __init__(self, runners: int, limit: int, name: str = "puddle-emulator") -> None:
        if not 1 <= runners <= limit:
            raise ValueError(f"runners, limit: need 1 <= runners <= limit, got {runners}, {limit}")
        self._runners, self._limit, self._name = runners, limit, name
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._lent = 0
        self._shut = False
        for _ in range(runners):
            self._spawn()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        if self._shut:
            raise RuntimeError("cannot schedule new work after shutdown")
        future: futures.Future[Any] = futures.Future()
        self._work.put((future, fn, args, kwargs))
        return future

    @contextmanager
    def lend(self) -> Iterator[None]:
        """Around a handler's sleep: another runner takes its place meanwhile."""
        with self._lock:
            self._lent += 1
            if self._threads - self._lent < self._runners and self._threads < self._limit and not self._shut:
                self._spawn()
        try:
            yield
        finally:
            with self._lock:
                self._lent -= 1

    @property
    def threads(self) -> int:
        """Threads alive now (runners, stand-ins and the sleepers they stand in for)."""
        return self._threads

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            threads = self._threads
        if cancel_futures:
            while True:
                try:
                    item = self._work.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in range(threads):
            self._work.put(None)

    def _spawn(self) -> None:  # with the lock held, or from __init__
        self._threads += 1
        threading.Thread(target=self._run, name=f"{self._name}-{self._threads}", daemon=True).start()

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                with self._lock:
                    self._threads -= 1
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as err:  # handed to the future, as an executor does
                    future.set_exception(err)
            del item, future, fn, args, kwargs
            with self._lock:
                if self._threads - self._lent > self._runners:  # a stand-in whose sleeper is back
                    self._threads -= 1
                    return
