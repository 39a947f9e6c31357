"""One transaction per request, for the REST endpoints and the web pages alike.

A `TransactionRoute` opens the request's session before the dependencies run (kept on
`request.state` under `session_state`), commits it once the endpoint has answered and
before the answer is sent, and rolls it back when anything fails; the failure is then
answered by the subclass's `failure` (a JSON refusal, an error page), inside the
transaction's lifetime rather than in app-wide handlers that run after dependency cleanup.

The request's body is received in full before the transaction opens, so a slow client holds
no lock. A request that may write (any method but GET and HEAD) takes the write lock up
front (`db.session.take_write_lock`), after its turn among the process's writers on SQLite
(`Services.write_turn`); reads stay deferred. When the database asks for the
unit of work to run again (`db.session.is_busy`: SQLite busy, PostgreSQL serialization
failure or deadlock), the request runs again in a new transaction after a jittered pause, a
few times, before that failure is answered.

Uploads are the one exception to a single transaction: an endpoint marked
`validates_first` starts as a reader, reads and validates its upload (the slow part) with
no lock held, then calls `begin_writing`, which ends the reading transaction and starts the
writing one (a REST endpoint waits for its turn among the process's writers itself, on the
event loop, and commits within it; GraphQL's uploads wait in `begin_writing`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, TypeVar

import anyio.from_thread
from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from crowdquant.db.session import BUSY_RETRIES, is_busy, retry_pause, take_write_lock
from crowdquant.http.json_depth import nested_deeper_than
from crowdquant.http.services import services

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})
_VALIDATES_FIRST = "_crowdquant_validates_first"

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def validates_first(endpoint: Endpoint) -> Endpoint:
    """Mark a writing endpoint that validates its upload before it writes: its request starts
    as a reader, and the endpoint calls `begin_writing` once it is ready to write."""
    setattr(endpoint, _VALIDATES_FIRST, True)
    return endpoint


_TURN = "crowdquant_write_turn"
_TURN_HELD = "crowdquant_write_turn_held"


def offer_write_turn(session: Session, turn: asyncio.Lock | None) -> None:
    """Let `begin_writing` on `session` wait for `turn` (`Services.writers` on a database
    that takes one writer at a time) before it takes the write lock."""
    if turn is not None:
        session.info[_TURN] = turn


def begin_writing(session: Session) -> None:
    """End `session`'s reading transaction and begin a writing one: after the process's
    turn among writers, if one was offered (`offer_write_turn`), the write lock taken up
    front (`db.session.take_write_lock`); what was read stays loaded. Call it from the
    request's worker thread; `give_back_write_turn` once the transaction has ended."""
    session.commit()
    turn = session.info.get(_TURN)
    if isinstance(turn, asyncio.Lock) and not session.info.get(_TURN_HELD):
        session.info[_TURN_HELD] = anyio.from_thread.run(_wait_for, turn)
    take_write_lock(session)


TURN_WAIT_SECONDS = 2.0
"""How long an upload waits for its turn among writers before it goes on without (and
waits for the write lock itself): the writer holding the turn may need a worker thread
that waiting uploads hold."""


async def _wait_for(turn: asyncio.Lock) -> bool:
    with anyio.move_on_after(TURN_WAIT_SECONDS):
        await turn.acquire()
        return True
    return False


def give_back_write_turn(session: Session) -> None:
    """Release the turn `begin_writing` waited for, if it did; from the request's worker
    thread, once its transaction has ended."""
    turn = session.info.get(_TURN)
    if isinstance(turn, asyncio.Lock) and session.info.pop(_TURN_HELD, False):
        anyio.from_thread.run_sync(turn.release)


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().endswith("json")


class TransactionRoute(APIRoute):
    """Subclasses name the state their session is kept under and how a failure is answered."""

    session_state: ClassVar[str]
    failure: ClassVar[Callable[[Request, Exception], Response]]

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        state, failure = self.session_state, type(self).failure
        reads_first = getattr(self.endpoint, _VALIDATES_FIRST, False)

        async def handle(request: Request) -> Response:
            writes = request.method not in READ_ONLY_METHODS
            if writes:
                body = await request.body()  # kept by the request for the endpoint and every try
                if _is_json(request) and nested_deeper_than(body):
                    return failure(request, HTTPException(400, "nested too deeply"))
            writes = writes and not reads_first
            async with services(request).write_turn(writes):
                return await attempts(request, writes)

        async def attempts(request: Request, writes: bool) -> Response:
            for attempt in range(1, BUSY_RETRIES + 1):
                session = services(request).sessions()
                setattr(request.state, state, session)
                try:
                    if writes:
                        await run_in_threadpool(take_write_lock, session)
                    response = await handler(request)
                    await run_in_threadpool(_commit_and_close, session)
                except Exception as error:
                    await run_in_threadpool(session.rollback)
                    try:
                        if is_busy(error) and attempt < BUSY_RETRIES:
                            await asyncio.sleep(retry_pause(attempt))
                            continue  # another writer came first; start afresh
                        return failure(request, error)  # which may read what was loaded
                    finally:
                        await run_in_threadpool(session.close)
                return response
            raise AssertionError("unreachable: the last attempt returns")

        return handle


def _commit_and_close(session: Session) -> None:
    """Commit and close in one call: one trip to a worker thread, not two. A failing
    commit leaves the session to be rolled back, then closed once the failure is answered."""
    session.commit()
    session.close()


def request_session(request: Request, state: str) -> Session:
    """The session a `TransactionRoute` opened for `request`."""
    session = getattr(request.state, state, None)
    if not isinstance(session, Session):
        raise TypeError("this endpoint runs on a TransactionRoute, which opens its session")
    return session
