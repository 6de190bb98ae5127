"""Deadlines on calls into the store, on threads of its own.

chromadb's HTTP client waits forever for a server that stopped answering (SIGSTOP, a frozen VM, a network
partition that drops packets). Each call into Chroma runs here instead: on a bounded pool whose threads do
nothing else, so a hung store cannot take the threads that serve `/health`, `/metrics` and the page, and with a
deadline, past which the caller gets `StoreUnavailable` naming the store.

After a call misses its deadline the store counts as down: calls fail at once instead of queueing behind the
hung ones, and each failing call makes sure a probe is under way (one at a time, in the background, with the
same deadline). The first probe that answers ends it; no request ever waits on a probe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ParamSpec, TypeVar

from rag.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class StoreGate:
    """Runs store calls with a deadline on a bounded pool, and knows whether the store is down."""

    def __init__(self, timeout_seconds: float, threads: int = 8, what: str = "the vector store") -> None:
        self.timeout_seconds = timeout_seconds
        self._what = what
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")
        self._lock = threading.Lock()
        self._down: str | None = None  # why the store counts as down
        self._probe: Callable[[], object] | None = None
        self._probing = False

    def probe_with(self, probe: Callable[[], object]) -> None:
        """The cheapest call that shows the store answers (run on the pool while it is down)."""
        self._probe = probe

    @property
    def down(self) -> str | None:
        """Why the store counts as down (None: it answers)."""
        return self._down

    def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on the store's pool, within the deadline; StoreUnavailable past it, or at once
        while the store is down."""
        if self._down is not None:
            self._start_probe()
            raise StoreUnavailable(f"{self._down}; checking whether it answers again")
        try:
            return self._within_deadline(fn, *args, **kwargs)
        except StoreUnavailable:
            self._start_probe()
            raise

    def _within_deadline(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        future = self._pool.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=self.timeout_seconds)
        except FutureTimeout:
            future.cancel()  # a call still queued never runs: its caller was told it failed
            reason = f"{self._what} did not answer within {self.timeout_seconds:g} s (RAG_STORE_TIMEOUT_SECONDS)"
            with self._lock:
                self._down = reason
            raise StoreUnavailable(reason) from None

    def _start_probe(self) -> None:
        with self._lock:
            if self._probing or self._probe is None or self._down is None:
                return
            self._probing = True
        threading.Thread(target=self._run_probe, name="store-probe", daemon=True).start()

    def _run_probe(self) -> None:
        assert self._probe is not None
        try:
            self._within_deadline(self._probe)
        except Exception:  # still down (timed out, or failed): the next call starts another probe
            return
        else:
            with self._lock:
                self._down = None
        finally:
            with self._lock:
                self._probing = False

    def close(self) -> None:
        """Stop taking calls; threads still inside a hung call are left to it."""
        self._pool.shutdown(wait=False, cancel_futures=True)


class Bounded:
    """A Chroma collection whose every method call goes through a `StoreGate`."""

    __slots__ = ("_gate", "_target")

    def __init__(self, target: Any, gate: StoreGate) -> None:
        self._target = target
        self._gate = gate

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr
        gate = self._gate

        def bounded(*args: Any, **kwargs: Any) -> Any:
            return gate.call(attr, *args, **kwargs)

        return bounded
