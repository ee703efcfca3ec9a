"""Ctrl-C and SIGTERM for commands that change nodes.

The first signal stops the command at its next await, so it can put the node it was changing
back in a consistent state and say what is true; while such a cleanup runs (`protected()`), the
first signal only asks it to stop afterwards. A second signal abandons the cleanup too.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


class Interrupted(Exception):
    """The command was stopped by a signal (after its cleanup, unless `abandoned`)."""

    def __init__(self, abandoned: bool):
        super().__init__("abandoned" if abandoned else "interrupted")
        self.abandoned = abandoned


class Interrupts:
    def __init__(self) -> None:
        self.count = 0
        self._protected = 0
        self._task: asyncio.Task | None = None

    @property
    def requested(self) -> bool:
        return self.count > 0

    @contextmanager
    def protected(self) -> Iterator[None]:
        """A cleanup that a first signal must not cut short."""
        self._protected += 1
        try:
            yield
        finally:
            self._protected -= 1

    def _signalled(self) -> None:
        self.count += 1
        if self.count == 1:
            print("\ninterrupted: stopping at a safe point and putting the node in hand back "
                  "(press Ctrl-C again to abandon that)", file=sys.stderr, flush=True)
            if self._protected:
                return
        else:
            print("\ninterrupted again: abandoning the cleanup", file=sys.stderr, flush=True)
        if self._task is not None:
            self._task.cancel()

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """asyncio.run(main()) with SIGINT and SIGTERM routed here; Interrupted when stopped."""
        async def wrapper() -> T:
            loop = asyncio.get_running_loop()
            self._task = asyncio.current_task()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self._signalled)
            try:
                return await main()
            finally:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)
        try:
            return asyncio.run(wrapper())
        except asyncio.CancelledError:
            raise Interrupted(abandoned=self.count > 1) from None


async def ask(prompt: str) -> str:
    """input() that a signal can interrupt: read in a daemon thread (a blocked read in the
    default executor would keep the process alive after Ctrl-C until Enter is pressed)."""
    import threading

    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def fail(error: BaseException) -> None:
        if not answer.done():
            answer.set_exception(error)

    def give(line: str) -> None:
        if not answer.done():
            answer.set_result(line)

    def read() -> None:
        try:
            sys.stderr.write(prompt)  # not stdout: it may be a document (--json) or a pipe
            sys.stderr.flush()
            line = input()
        except BaseException as exc:  # EOF, or a closed terminal
            # Passed now: Python unbinds `exc` when this block ends, before the loop runs the callback.
            loop.call_soon_threadsafe(fail, exc)
            return
        loop.call_soon_threadsafe(give, line)

    threading.Thread(target=read, daemon=True).start()
    return await answer
