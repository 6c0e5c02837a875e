"""The next long poll waits for the updates being handled (bot/inflight.py), at most a bounded time:
the processor's own accounting, and the running bot (Bot API double, real PostgreSQL) sending its
next getUpdates only once the reply to the last update is out."""
from __future__ import annotations

import asyncio

from telegram.request import HTTPXRequest

from bot import inflight
from bot.inflight import InFlightUpdates
from tests.bot.conftest import USER


async def test_an_idle_processor_is_settled_at_once():
    assert await InFlightUpdates(4).settled(timeout=5) is True


async def test_the_poll_waits_for_the_update_in_flight():
    proc, release = InFlightUpdates(4), asyncio.Event()
    handling = asyncio.create_task(proc.process_update(object(), release.wait()))
    await asyncio.sleep(0)
    assert proc.in_flight == 1
    poll = asyncio.create_task(proc.settled(timeout=30))
    for _ in range(20):                       # the poll stays held while the update is handled
        await asyncio.sleep(0)
    assert not poll.done()
    release.set()
    assert await poll is True and proc.in_flight == 0
    await handling


async def test_a_slow_update_holds_the_poll_only_for_the_bound():
    proc, release = InFlightUpdates(4), asyncio.Event()
    handling = asyncio.create_task(proc.process_update(object(), release.wait()))
    await asyncio.sleep(0)
    assert await proc.settled(timeout=0.01) is False   # gave up waiting; the update still runs
    assert proc.in_flight == 1 and not handling.done()
    release.set()
    await handling


async def test_a_failing_update_is_no_longer_in_flight():
    proc = InFlightUpdates(4)

    async def boom():
        raise RuntimeError("handler bug")
    try:
        await proc.process_update(object(), boom())
    except RuntimeError:
        pass
    assert proc.in_flight == 0 and await proc.settled(timeout=5) is True


async def test_the_running_bot_polls_again_only_after_replying(make_bot, monkeypatch):
    monkeypatch.setattr(inflight, "HOLD_SECONDS", 30.0)  # so that only the reply can release the poll
    b = await make_bot()
    updates: InFlightUpdates = b.app.bot_data["polling"].updates
    seen: list[int] = []
    real = HTTPXRequest.do_request

    async def recording(self, url, *args, **kwargs):
        if url.endswith("/getUpdates"):
            seen.append(updates.in_flight)
        return await real(self, url, *args, **kwargs)
    monkeypatch.setattr(HTTPXRequest, "do_request", recording)
    await b.say(USER, "/start")                          # the poll sent before the patch returns it
    for phrase in ("in 10 minutes stretch", "/help", "tomorrow at 9 call mom"):
        await b.say(USER, phrase)
    await b.api.async_wait_for(lambda: len(seen) >= 4)
    assert seen and set(seen) == {0}, seen               # never while an update was being handled
