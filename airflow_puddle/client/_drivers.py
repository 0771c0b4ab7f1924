"""What an op yields and the two drivers that run ops: one RPC, a sleep, or a blocking call.

An op (:mod:`airflow_puddle.client._ops`) is a generator: it yields :class:`Rpc`,
:class:`Sleep` or :class:`Call` steps, receives each step's result (or its
:class:`PuddleError`, thrown back in), and returns its own result. :class:`SyncDriver` runs the
steps with blocking calls and ``time.sleep``; :class:`AsyncDriver` runs the very same ops with
``grpc.aio``, ``asyncio.sleep`` and, for a :class:`Call`, a thread of a small bounded pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Generator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from airflow_puddle.client._transport import AsyncChannel, Rpc, SyncChannel
from airflow_puddle.domain.errors import PuddleError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Sleep:
    """An op's request to pause before its next RPC."""

    seconds: float


@dataclasses.dataclass(frozen=True)
class Call:
    """An op's request to run a blocking call of another client (the official ``puddle.client``).

    The sync driver calls it; the async driver runs it in a worker thread of a small bounded pool.
    It must raise only :class:`PuddleError` for what the op may handle (the adapter maps the rest).
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self) -> Any:
        return self.fn(*self.args, **self.kwargs)


BLOCKING_CALLS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="puddle-call")
"""The async driver's threads for :class:`Call` steps: a few, since the shared poll makes one call per interval."""

Op = Generator[Rpc | Sleep | Call, Any, T]


# --------------------------------------------------------------------------- drivers


class SyncDriver:
    _channel: SyncChannel
    _authorizer: Any

    def _run(self, op: Op[T]) -> T:
        value: Any = None
        error: PuddleError | None = None
        while True:
            try:
                step = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, Sleep):
                    time.sleep(step.seconds)
                elif isinstance(step, Call):
                    value = step()
                else:
                    value = self._channel.call(step, self._authorizer.token_for_call)
            except PuddleError as exc:
                error = exc


class AsyncDriver:
    _channel: AsyncChannel
    _authorizer: Any

    async def _run(self, op: Op[T]) -> T:
        """Async version of the sync driver."""
        value: Any = None
        error: PuddleError | None = None
        while True:
            try:
                step = op.throw(error) if error is not None else op.send(value)
            except StopIteration as stop:
                return stop.value
            value, error = None, None
            try:
                if isinstance(step, Sleep):
                    await asyncio.sleep(step.seconds)
                elif isinstance(step, Call):
                    value = await asyncio.get_running_loop().run_in_executor(BLOCKING_CALLS, step)
                else:
                    value = await self._channel.call(step, self._authorizer.token_for_call)
            except PuddleError as exc:
                error = exc
