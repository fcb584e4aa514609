"""Commands from the database (the dashboard, ``algoengine command``) into the event loop.

A :class:`CommandPoller` thread reads the ``commands`` table every ``interval_s`` for commands
not yet acted on that concern this engine's strategies (or all strategies), hands each to the
engine once (:meth:`Engine.post`), and, when the loop has carried it out, records who acted,
when and with what result (``mark_command_acted``: the first engine task to act wins; another
task that sees it acted does not act again). Database errors are logged and retried on the
next poll: the loop never waits for the database.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Collection
from typing import Any

from algoengine.engine.engine import Engine
from algoengine.persistence.repositories import mark_command_acted, pending_commands

__all__ = ["CommandPoller"]

log = logging.getLogger(__name__)


class CommandPoller:
    """Poll the commands table for ``engine`` (see the module docstring).

    Parameters
    ----------
    engine
        The engine to post commands to.
    bind
        A SQLAlchemy Engine for the database.
    owner
        This engine task's name (``acted_by``).
    strategy_ids
        The strategies this task runs (commands for others are left to their owners).
    interval_s
        Seconds between polls.
    """

    def __init__(
        self,
        engine: Engine,
        bind: Any,
        *,
        owner: str,
        strategy_ids: Collection[str],
        interval_s: float = 0.5,
    ) -> None:
        self._engine = engine
        self._bind = bind
        self._owner = owner
        self._strategies = list(strategy_ids)
        self._interval = interval_s
        self._posted: set[int] = set()
        self._acks: queue.Queue[tuple[int, str, int]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="command-poller", daemon=True)
        self.acted = 0
        self.errors = 0

    def start(self) -> CommandPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling (after recording the results already in hand)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._record_acks()

    def poll_once(self) -> int:
        """Read pending commands and post the new ones; returns how many were posted."""
        posted = 0
        for row in pending_commands(self._bind, strategy_ids=self._strategies):
            if row.id in self._posted:
                continue
            self._posted.add(row.id)
            try:
                cmd = row.to_command()
            except ValueError as exc:
                self._acks.put((row.id, f"refused: {exc}", time.time_ns()))
                continue
            self._engine.post(cmd, functools.partial(self._done, row.id))
            posted += 1
        return posted

    def _done(self, command_id: int, result: str) -> None:
        # in the loop's thread: only a queue put; the poller thread writes the row
        self._acks.put((command_id, result, time.time_ns()))

    def _record_acks(self) -> None:
        while True:
            try:
                command_id, result, ts = self._acks.get_nowait()
            except queue.Empty:
                return
            try:
                if mark_command_acted(
                    self._bind, command_id, acted_ns=ts, acted_by=self._owner, result=result[:1000]
                ):
                    self.acted += 1
            except Exception as exc:  # retried next round
                self.errors += 1
                self._acks.put((command_id, result, ts))
                log.warning("could not record a command as acted", extra={"error": str(exc)})
                return

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._record_acks()
                self.poll_once()
            except Exception as exc:  # the database may be down: poll again later
                self.errors += 1
                log.warning("command poll failed", extra={"error": str(exc)})
            self._stop.wait(self._interval)
