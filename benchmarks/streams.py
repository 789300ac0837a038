"""SSE load: many concurrent streams, producers posting events, delivery latency.

Each worker process (``--clients``) takes its share of the users (``users[w::n]``)
and opens the streams of those users (stream ``i`` belongs to user ``i % users``),
waits until every stream has its response headers (QuestKit's SDK counts itself
connected then; the server subscribes before sending them), then posts events
for its users at its share of ``rate`` on an open-loop schedule, and records
every ``update`` frame each stream receives.

Correlation is exact, not "latest event wins": a user's events are posted one
at a time (the next waits for the previous answer, so the server applies them
in send order), every accepted event's answer lists the missions it changed
(``missionsUpdated``), and a ``mission.progress`` frame carries
``(userId, missionId, currentCount)``. Users are fresh, so the frame with
``currentCount == c`` for mission ``m`` belongs to the ``c``-th accepted event
of that user that listed ``m``. Delivery latency = frame arrival - that event's
answer (``accepted``; a frame that beats the answer counts 0 and is counted as
``early``) and, beside it, - the event's send time.

Every stream of the user that was open throughout should receive one frame per
listed mission: what did not arrive by the end of the drain is ``missing``; a
frame for another user is ``misdelivered`` (a bug, whatever the timing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableSequence
from typing import Any

import httptools
import msgspec

from benchmarks.client import Connection, Endpoint, HTTPError, encode_request, parse_url
from benchmarks.histogram import Histogram
from benchmarks.load import MIN_SLEEP, LoadError, Schedule, window_probe
from benchmarks.questkit_wire import EventEncoder

OPEN_CONCURRENCY = 200  # streams being opened at once
MAX_SAMPLES = 5


class StreamSpec(msgspec.Struct, frozen=True):
    url: str
    users: list[tuple[str, str]]  # (userId, token), fresh users
    streams: int
    rate: float  # events/s over all users and processes
    events: list[dict[str, Any]]  # templates {name, payload}
    tag: str
    warmup: float = 1.0
    seconds: float = 5.0
    drain_timeout: float = 5.0
    processes: int = 1
    post_connections: int = 32
    connect_timeout: float = 60.0
    stream_path: str = "/v1/sse/updates"
    interval: float = 0.25


class StreamWorkerResult(msgspec.Struct):
    worker: int
    streams_requested: int
    streams_opened: int
    open_failures: dict[str, int]
    failure_samples: list[str]
    streams_held: int  # open at the end of the drain
    disconnects: int  # open streams the server closed during the run
    posts_ok: int
    posts_ok_in_window: int  # answered within the window (throughput)
    posts_errors: int
    posts_incomplete: int
    post_status: dict[str, int]
    post_samples: list[str]
    post_latency: dict[str, Any]  # from intended send time (open loop)
    delivery: dict[str, Any]  # frame arrival - event answer
    delivery_from_send: dict[str, Any]  # frame arrival - event send
    expected: int
    delivered: int
    missing: int
    misdelivered: int
    unmatched: int
    early: int
    frames: int
    heartbeats: int
    timeline_ok: dict[int, int]
    timeline_errors: dict[int, int]
    cpu_seconds: float
    loop_lag: dict[str, Any]
    schedule_lag: dict[str, Any]


class _Data(msgspec.Struct):
    userId: str = ""  # wire names
    missionId: str = ""
    currentCount: int = -1


class _Update(msgspec.Struct):
    type: str = ""
    data: _Data = msgspec.field(default_factory=_Data)


_decode_update = msgspec.json.Decoder(_Update).decode


class _Post(msgspec.Struct):
    sent: float
    measured: bool
    accepted: float | None = None
    missions: tuple[str, ...] = ()


class _Stream(asyncio.Protocol):
    """One SSE connection: response head, then frames split on blank lines."""

    def __init__(self, user: int) -> None:
        self.user = user
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.headers: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.error_body = bytearray()
        self.buffer = b""
        self.frames: list[tuple[float, str, str, str, int]] = []  # (arrival, type, user, mission, count)
        self.heartbeats = 0
        self.lost_at: float | None = None
        self.now = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.now = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"malformed response: {exc}")
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost_at = time.monotonic()
        self._fail(f"connection closed ({exc or 'EOF'})")

    def _fail(self, why: str) -> None:
        if not self.headers.done():
            self.headers.set_exception(HTTPError(why))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if not self.headers.done():
            self.headers.set_result(self.status)

    def on_body(self, body: bytes) -> None:
        if self.status != 200:
            self.error_body += body[:300]
            return
        buf = self.buffer + body
        hold = b""
        if buf.endswith(b"\r"):  # a CRLF split across reads
            buf, hold = buf[:-1], b"\r"
        blocks = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n\n")
        self.buffer = blocks.pop() + hold
        for block in blocks:
            self._block(block)

    def _block(self, block: bytes) -> None:
        event = b"message"
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if not line:
                continue
            if line[0] == 58:  # b":" comment (heartbeat)
                self.heartbeats += 1
                continue
            name, _, value = line.partition(b":")
            if value[:1] == b" ":
                value = value[1:]
            if name == b"event":
                event = value
            elif name == b"data":
                data.append(value)
        if event != b"update" or not data:
            return
        try:
            update = _decode_update(b"\n".join(data))
        except (msgspec.DecodeError, msgspec.ValidationError):
            update = _Update(type="<undecodable>")
        d = update.data
        self.frames.append((self.now, update.type, d.userId, d.missionId, d.currentCount))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_stream(
    endpoint: Endpoint, path: str, token: str, user: int
) -> _Stream:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(lambda: _Stream(user), endpoint.host, endpoint.port)
    assert stream.transport is not None
    stream.transport.write(
        encode_request("GET", path, endpoint.authority,
                       headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"})
    )
    await stream.headers
    return stream


async def probe_stream(url: str, path: str, token: str, time_limit: float = 10.0) -> tuple[int, str]:
    """Open one stream, return (status, error body snippet) once the head arrives, close it."""
    endpoint, prefix = parse_url(url)
    stream: _Stream | None = None
    try:
        async with asyncio.timeout(time_limit):
            stream = await open_stream(endpoint, prefix + path, token, 0)
            if stream.status != 200:
                await asyncio.sleep(0.05)  # let the (short) error body arrive
            return stream.status, bytes(stream.error_body).decode("utf-8", "replace")
    finally:
        if stream is not None:
            stream.close()


async def run_stream_worker(
    spec: StreamSpec,
    index: int,
    *,
    on_ready: Callable[[], None],
    wait_go: Callable[[], Awaitable[float]],
    progress: MutableSequence[int],
) -> StreamWorkerResult:
    endpoint, prefix = parse_url(spec.url)
    all_users = len(spec.users)
    mine = list(range(index, all_users, spec.processes))  # global user indexes
    local_of = {g: i for i, g in enumerate(mine)}
    users = [spec.users[g] for g in mine]
    stream_users = [local_of[i % all_users] for i in range(spec.streams) if (i % all_users) in local_of]
    monotonic = time.monotonic

    # -- open every stream before the clock starts -------------------------------------
    streams: list[_Stream] = []
    failures: dict[str, int] = {}
    samples: list[str] = []
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def open_one(u: int) -> None:
        async with gate:
            try:
                stream = await open_stream(endpoint, prefix + spec.stream_path, users[u][1], u)
            except (HTTPError, OSError) as exc:
                key = "connection"
                failures[key] = failures.get(key, 0) + 1
                if len(samples) < MAX_SAMPLES:
                    samples.append(f"{key}: {exc}")
                return
            if stream.status != 200:
                await asyncio.sleep(0.05)
                key = str(stream.status)
                failures[key] = failures.get(key, 0) + 1
                if len(samples) < MAX_SAMPLES:
                    samples.append(f"{key}: {bytes(stream.error_body).decode('utf-8', 'replace')}")
                stream.close()
                return
            streams.append(stream)

    try:
        async with asyncio.timeout(spec.connect_timeout):
            await asyncio.gather(*(open_one(u) for u in stream_users))
    except TimeoutError:
        raise LoadError(
            f"opening {len(stream_users):,} streams took longer than {spec.connect_timeout:g} s"
        ) from None
    if not streams:
        raise LoadError(f"no stream could be opened ({', '.join(samples) or 'no streams requested'})")

    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(spec.post_connections):
        conn = Connection(endpoint)
        try:
            await conn.connect()
        except OSError as exc:
            raise LoadError(f"cannot connect to {endpoint.authority}: {exc}") from None
        pool.put_nowait(conn)
    encoder = EventEncoder(users, spec.events, endpoint=endpoint, prefix=prefix, key_prefix=f"{spec.tag}-s{index}-")

    on_ready()
    t0 = await wait_go()
    ms = t0 + spec.warmup
    end = ms + spec.seconds
    await asyncio.sleep(max(0.0, t0 - monotonic()))

    posts: list[list[_Post]] = [[] for _ in users]
    chain: list[asyncio.Future[None] | None] = [None] * len(users)
    post_latency = Histogram()
    schedule_lag = Histogram()
    loop_lag = Histogram()
    status_counts: dict[str, int] = {}
    post_samples: list[str] = []
    timeline_ok: dict[int, int] = {}
    timeline_err: dict[int, int] = {}
    counters = {"ok": 0, "ok_window": 0, "errors": 0, "ok_total": 0, "err_total": 0}
    inflight: set[asyncio.Task[None]] = set()
    cpu = [0.0, 0.0]
    loop = asyncio.get_running_loop()

    async def post(u: int, intended: float, measured: bool, template: int) -> None:
        previous = chain[u]
        mine_done: asyncio.Future[None] = loop.create_future()
        chain[u] = mine_done
        try:
            if previous is not None and not previous.done():
                await previous  # one event at a time per user: applied in send order
            conn = await pool.get()
            record = _Post(sent=monotonic(), measured=measured)
            posts[u].append(record)
            try:
                status, body = await conn.request(encoder.encode(u, template))
            except (HTTPError, OSError) as exc:
                status, body = 0, str(exc).encode()
            finally:
                pool.put_nowait(conn)
            done = monotonic()
            ok = 200 <= status < 300
            bucket = int((done - t0) // spec.interval)
            if ok:
                record.accepted = done
                try:
                    record.missions = tuple(msgspec.json.decode(body).get("missionsUpdated") or ())
                except (msgspec.DecodeError, AttributeError):
                    record.missions = ()
                counters["ok_total"] += 1
                if ms <= done < end:
                    counters["ok_window"] += 1
                timeline_ok[bucket] = timeline_ok.get(bucket, 0) + 1
            else:
                counters["err_total"] += 1
                timeline_err[bucket] = timeline_err.get(bucket, 0) + 1
            if measured:
                key = str(status) if status else "connection"
                status_counts[key] = status_counts.get(key, 0) + 1
                post_latency.record(int((done - intended) * 1_000_000 + 0.5))
                if ok:
                    counters["ok"] += 1
                else:
                    counters["errors"] += 1
                    if len(post_samples) < MAX_SAMPLES:
                        post_samples.append(f"{key}: {body[:300].decode('utf-8', 'replace')}")
        finally:
            if not mine_done.done():  # cancelled at the drain deadline: already settled
                mine_done.set_result(None)

    async def producer() -> None:
        share = spec.rate * len(users) / all_users
        schedule = Schedule(share, t0, end)
        k = 0
        while (intended := schedule.peek()) is not None:
            now = monotonic()
            if intended > now:
                await asyncio.sleep(max(intended - now, MIN_SLEEP))
                continue
            schedule.advance()
            measured = intended >= ms
            if measured:
                schedule_lag.record(int((now - intended) * 1_000_000 + 0.5))
            u = k % len(users)
            task = asyncio.create_task(post(u, intended, measured, u + k // len(users)))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
            k += 1

    def report(ok: int, errors: int) -> None:
        progress[2 * index], progress[2 * index + 1] = ok, errors

    def probe() -> Awaitable[None]:
        return window_probe(ms, end, cpu, loop_lag, lambda: (counters["ok_total"], counters["err_total"]), report)

    probe_task = asyncio.create_task(probe())
    await producer()
    await probe_task
    drain_deadline = end + spec.drain_timeout
    if inflight:
        await asyncio.wait(set(inflight), timeout=max(0.0, drain_deadline - monotonic()))
    incomplete = sum(1 for t in inflight if not t.done())
    for task in list(inflight):
        task.cancel()
    # Then give the frames of the last answered events their own drain timeout: until every
    # held stream has every frame it is owed. (A total count of frames would also count the
    # frames of applied events whose answer never came, and stop while owed ones are in flight.)
    def owed(user: int) -> set[tuple[str, int]]:
        """(mission, currentCount) of the progress frames of the user's measured, answered events."""
        seen: dict[str, int] = {}
        out: set[tuple[str, int]] = set()
        for p in posts[user]:
            if p.accepted is None:
                continue
            for m in p.missions:
                seen[m] = seen.get(m, 0) + 1
                if p.measured:
                    out.add((m, seen[m]))
        return out

    wanted = {user: owed(user) for user in {s.user for s in streams}}
    frames_deadline = monotonic() + spec.drain_timeout
    while monotonic() < frames_deadline:
        if all(wanted[s.user] <= {(f[3], f[4]) for f in s.frames if f[1] == "mission.progress"}
               for s in streams if s.lost_at is None):
            break
        await asyncio.sleep(0.05)
    progress[2 * index] = counters["ok_total"]
    progress[2 * index + 1] = counters["err_total"]
    held = sum(1 for s in streams if s.lost_at is None)
    disconnects = sum(1 for s in streams if s.lost_at is not None)
    for stream in streams:
        stream.close()
    while not pool.empty():
        pool.get_nowait().close()

    # -- correlate frames with events --------------------------------------------------------
    delivery, from_send = Histogram(), Histogram()
    expected = delivered = misdelivered = unmatched = early = frames = heartbeats = 0
    listed: list[dict[str, list[_Post]]] = []
    for u_posts in posts:
        by_mission: dict[str, list[_Post]] = {}
        for p in u_posts:
            if p.accepted is not None:
                for m in p.missions:
                    by_mission.setdefault(m, []).append(p)
        listed.append(by_mission)
    for stream in streams:
        frames += len(stream.frames)
        heartbeats += stream.heartbeats
        if stream.lost_at is not None:
            continue  # not expected to have everything; counted as a disconnect
        uid = users[stream.user][0]
        by_mission = listed[stream.user]
        expected += sum(len(p.missions) for p in posts[stream.user] if p.measured and p.accepted is not None)
        seen: set[tuple[str, int]] = set()
        for arrival, kind, frame_user, mission, count in stream.frames:
            if frame_user and frame_user != uid:
                misdelivered += 1
                continue
            if kind != "mission.progress" or (mission, count) in seen:
                continue
            seen.add((mission, count))
            candidates = by_mission.get(mission, [])
            if not 1 <= count <= len(candidates):
                unmatched += 1
                continue
            p = candidates[count - 1]
            if not p.measured:
                continue
            assert p.accepted is not None
            delivered += 1
            if arrival < p.accepted:
                early += 1
            delivery.record(max(0, int((arrival - p.accepted) * 1_000_000 + 0.5)))
            from_send.record(int((arrival - p.sent) * 1_000_000 + 0.5))

    return StreamWorkerResult(
        worker=index, streams_requested=len(stream_users), streams_opened=len(streams),
        open_failures=failures, failure_samples=samples, streams_held=held, disconnects=disconnects,
        posts_ok=counters["ok"], posts_ok_in_window=counters["ok_window"], posts_errors=counters["errors"],
        posts_incomplete=incomplete,
        post_status=status_counts, post_samples=post_samples, post_latency=post_latency.to_dict(),
        delivery=delivery.to_dict(), delivery_from_send=from_send.to_dict(), expected=expected,
        delivered=delivered, missing=max(0, expected - delivered), misdelivered=misdelivered,
        unmatched=unmatched, early=early, frames=frames, heartbeats=heartbeats,
        timeline_ok=timeline_ok, timeline_errors=timeline_err, cpu_seconds=max(0.0, cpu[1] - cpu[0]),
        loop_lag=loop_lag.to_dict(), schedule_lag=schedule_lag.to_dict(),
    )
