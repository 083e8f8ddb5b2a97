"""Hands an upload's bytes from the event loop to its job in blocks, aggregated on an executor
(the upload's own thread): the loop only gathers bytes, and never waits for aggregation."""

from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Callable

from server.aggregation import BLOCK_SIZE


class BlockFeeder:
    """Gathers messages into blocks of about `block_size` bytes and feeds each block's messages
    to `feed` on `executor`, one block at a time: while one is aggregated the next one fills,
    and a block that fills before the last is done waits for it. The messages are fed as they
    came, each let go once fed, so that memory holds about two blocks (the aggregator copies
    them into its own). An error of `feed` is raised by the add() or flush() after it."""

    def __init__(self, feed: Callable[[bytes], None], executor: Executor,
                 block_size: int = BLOCK_SIZE) -> None:
        self._feed = feed
        self._executor = executor
        self._block_size = block_size
        self._messages: list[bytes] = []
        self._size = 0
        self._in_flight: asyncio.Future | None = None

    async def add(self, data: bytes) -> None:
        """Takes the next bytes; hands a block over once one is full."""
        self._messages.append(data)
        self._size += len(data)
        if self._size >= self._block_size:
            await self._hand_over()

    async def flush(self) -> None:
        """Feeds what is left and waits until every block is aggregated."""
        if self._messages:
            await self._hand_over()
        await self._wait_in_flight()

    async def settle(self) -> None:
        """Waits for the block being aggregated, whatever its outcome, even if cancelled
        meanwhile: a job must not be ended while a thread still feeds it."""
        if self._in_flight is not None:
            await asyncio.wait([self._in_flight])
            self._in_flight = None

    async def _hand_over(self) -> None:
        await self._wait_in_flight()
        block, self._messages, self._size = self._messages, [], 0
        self._in_flight = asyncio.get_running_loop().run_in_executor(
            self._executor, self._feed_all, block)

    def _feed_all(self, messages: list[bytes]) -> None:
        messages.reverse()
        while messages:
            self._feed(messages.pop())

    async def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            # Shielded: a cancelled call leaves the block to finish, for settle() to wait on.
            await asyncio.shield(self._in_flight)  # raises what feed raised
            self._in_flight = None
