"""The ``mixed`` load: QuestKit writes, reads and streams on one server at once.

Closed loop over ``connections`` connections; each connection's next operation
follows a fixed interleaved pattern of 20 (16 writes, 3 reads, 1 stream), so
80 % of operations are ``POST /v1/events``, 15 % reads (``GET /v1/missions`` and
``GET /v1/balance`` in turn) and 5 % open a new ``GET /v1/sse/updates``
subscriber on a connection of its own, which is then held to the end of the run
while its connection goes on with the pattern. Every operation is for the next
user of this worker's share of the (fresh) users, drawn at random (a user's
operations are of every class; one of its operations in flight at a time).

Latency of a write or a read: answer - send. Latency of a stream: delivery, the
same exact event<->frame correlation as ``sse`` (benchmarks/streams.py): a
user's events never overlap (a user still in flight is skipped), so with fresh
users the ``mission.progress`` frame with ``currentCount == c`` of mission
``m`` belongs to the ``c``-th answered event that listed ``m``. A stream is
expected to receive the frames of its user's events *sent after* it was open
(response headers received; the server subscribes before it sends them);
delivery = frame arrival - that event's answer. Time to open a stream is
reported beside it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, MutableSequence
from typing import Any

import msgspec

from benchmarks.client import Connection, HTTPError, encode_request, parse_url
from benchmarks.histogram import Histogram
from benchmarks.load import LoadError, WorkerResult, _Recorder, share, window_probe
from benchmarks.questkit_wire import EventEncoder
from benchmarks.streams import _Stream, open_stream

PATTERN = "WWWWRWWWWWSWWWRWWWWR"  # 16 W, 3 R, 1 S: 80/15/5, interleaved
assert (PATTERN.count("W"), PATTERN.count("R"), PATTERN.count("S")) == (16, 3, 1)
CLASSES = {"W": "write", "R": "read", "S": "stream"}


class MixedSpec(msgspec.Struct, frozen=True):
    url: str
    users: list[tuple[str, str]]  # fresh (userId, token)
    events: list[dict[str, Any]]  # templates {name, payload}
    read_paths: list[str]
    tag: str
    connections: int = 64
    warmup: float = 1.0
    seconds: float = 5.0
    drain_timeout: float = 5.0
    processes: int = 1
    stream_path: str = "/v1/sse/updates"
    interval: float = 0.25


class MixedWorkerResult(msgspec.Struct):
    worker: int
    write: WorkerResult
    read: WorkerResult
    stream: WorkerResult  # ok/errors: streams opened; histogram: time to open
    delivery: dict[str, Any]  # frame arrival - event answer
    delivery_from_send: dict[str, Any]
    streams_opened: int
    streams_failed: int
    streams_held: int
    expected: int
    delivered: int
    delivered_in_window: int
    missing: int
    misdelivered: int
    early: int
    skipped_busy: int  # picks that found the next user still in flight


class _Post(msgspec.Struct):
    sent: float
    measured: bool
    accepted: float | None = None
    missions: tuple[str, ...] = ()


def _worker_result(index: int, rec: _Recorder, cpu: float, loop_lag: Histogram, incomplete: int) -> WorkerResult:
    empty = Histogram().to_dict()
    return WorkerResult(
        worker=index, histogram=rec.hist.to_dict(), service=empty, schedule_lag=empty,
        loop_lag=loop_lag.to_dict(), ok=rec.ok, ok_in_window=rec.ok_in_window, errors=rec.errors,
        incomplete=incomplete, status_counts=rec.status_counts, error_samples=rec.samples,
        timeline_ok=rec.timeline_ok, timeline_errors=rec.timeline_err, cpu_seconds=cpu,
        late_dispatches=0, max_backlog=0, shed=0,
    )


async def run_mixed_worker(
    spec: MixedSpec,
    index: int,
    *,
    on_ready: Callable[[], None],
    wait_go: Callable[[], Awaitable[float]],
    progress: MutableSequence[int],
) -> MixedWorkerResult:
    endpoint, prefix = parse_url(spec.url)
    users = spec.users[index :: spec.processes]
    n_conns = max(1, share(spec.connections, spec.processes, index))
    if len(users) < 2 * n_conns:
        raise LoadError(f"mixed needs at least 2 users per connection ({len(users)} for {n_conns})")
    encoder = EventEncoder(users, spec.events, endpoint=endpoint, prefix=prefix, key_prefix=f"{spec.tag}-m{index}-")
    reads = [
        [encode_request("GET", prefix + path, endpoint.authority, headers={"Authorization": f"Bearer {token}"})
         for path in spec.read_paths]
        for _, token in users
    ]
    conns = [Connection(endpoint) for _ in range(n_conns)]
    try:
        await asyncio.gather(*(c.connect() for c in conns))
    except OSError as exc:
        raise LoadError(f"cannot connect to {endpoint.authority}: {exc}") from None
    on_ready()
    monotonic = time.monotonic
    t0 = await wait_go()
    ms, end = t0 + spec.warmup, t0 + spec.warmup + spec.seconds
    recs = {c: _Recorder(t0, ms, end, spec.interval) for c in CLASSES.values()}
    loop_lag = Histogram()
    cpu = [0.0, 0.0]
    posts: list[list[_Post]] = [[] for _ in users]
    busy = [False] * len(users)
    streams: list[tuple[_Stream, float]] = []  # (stream, opened at)
    state = {"op": 0, "skipped": 0, "inflight": {c: 0 for c in CLASSES.values()}}
    await asyncio.sleep(max(0.0, t0 - monotonic()))

    rng = random.Random(index)  # reproducible; a user's operations are of every class

    def next_user() -> int:
        while True:  # at most half of the users are in flight (2 per connection)
            u = rng.randrange(len(users))
            if not busy[u]:
                return u
            state["skipped"] += 1

    async def lane(conn: Connection) -> None:
        while True:
            start = monotonic()
            if start >= end:
                return
            kind = CLASSES[PATTERN[state["op"] % len(PATTERN)]]
            state["op"] += 1
            u = next_user()
            measured = start >= ms
            if measured:
                state["inflight"][kind] += 1
            busy[u] = True
            try:
                if kind == "write":
                    post = _Post(sent=start, measured=measured)
                    posts[u].append(post)
                    try:
                        status, body = await conn.request(encoder.encode(u, len(posts[u])))
                    except (HTTPError, OSError) as exc:
                        status, body = 0, str(exc).encode()
                    if 200 <= status < 300:
                        post.accepted = monotonic()
                        try:
                            post.missions = tuple(msgspec.json.decode(body).get("missionsUpdated") or ())
                        except (msgspec.DecodeError, AttributeError):
                            post.missions = ()
                elif kind == "read":
                    try:
                        status, body = await conn.request(reads[u][state["op"] % len(spec.read_paths)])
                    except (HTTPError, OSError) as exc:
                        status, body = 0, str(exc).encode()
                else:
                    try:
                        stream = await open_stream(endpoint, prefix + spec.stream_path, users[u][1], u)
                        status, body = stream.status, bytes(stream.error_body)
                        if status == 200:
                            streams.append((stream, monotonic()))
                        else:
                            stream.close()
                    except (HTTPError, OSError) as exc:
                        status, body = 0, str(exc).encode()
            finally:
                busy[u] = False
                if measured:
                    state["inflight"][kind] -= 1
            recs[kind].record(start, start, monotonic(), status, body)
            if status == 0:
                await asyncio.sleep(0.05)  # do not spin on a refused connection

    def report(ok: int, errors: int) -> None:
        progress[2 * index], progress[2 * index + 1] = ok, errors

    def probe() -> Awaitable[None]:
        return window_probe(ms, end, cpu, loop_lag, lambda: (
            sum(r.done_total - r.errors_total for r in recs.values()), sum(r.errors_total for r in recs.values())),
            report)

    probe_task = asyncio.create_task(probe())
    tasks = [asyncio.create_task(lane(c)) for c in conns]
    await probe_task
    _, still = await asyncio.wait(tasks, timeout=max(0.0, end + spec.drain_timeout - monotonic()))
    for task in still:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for conn in conns:
        conn.close()

    # The frames of the last answered events get their own drain.
    def expected_frames(stream: _Stream, opened: float) -> set[tuple[str, int]]:
        """(mission, currentCount) of every progress frame this stream is owed."""
        seen: dict[str, int] = {}
        owed: set[tuple[str, int]] = set()
        for p in posts[stream.user]:
            if p.accepted is None:
                continue
            for m in p.missions:
                seen[m] = seen.get(m, 0) + 1
                if p.measured and p.sent >= opened:
                    owed.add((m, seen[m]))
        return owed

    def expected_for(stream: _Stream, opened: float) -> int:
        return len(expected_frames(stream, opened))

    # Wait until every held stream has every frame it is owed. (Counting all progress
    # frames instead ended the drain early: frames of events sent just before a stream
    # opened arrive too, are not owed, and made up for owed ones still in flight.)
    owed = [(s, expected_frames(s, o)) for s, o in streams if s.lost_at is None]
    deadline = monotonic() + spec.drain_timeout
    while monotonic() < deadline:
        if all(want <= {(f[3], f[4]) for f in s.frames if f[1] == "mission.progress"} for s, want in owed):
            break
        await asyncio.sleep(0.05)
    held = sum(1 for s, _ in streams if s.lost_at is None)
    for stream, _ in streams:
        stream.close()

    delivery, from_send = Histogram(), Histogram()
    expected = delivered = in_window = misdelivered = early = 0
    for stream, opened in streams:
        if stream.lost_at is not None:
            continue
        uid = users[stream.user][0]
        by_mission: dict[str, list[_Post]] = {}
        for p in posts[stream.user]:
            if p.accepted is not None:
                for m in p.missions:
                    by_mission.setdefault(m, []).append(p)
        expected += expected_for(stream, opened)
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
                continue
            p = candidates[count - 1]
            if not p.measured or p.sent < opened:
                continue
            assert p.accepted is not None
            delivered += 1
            in_window += ms <= arrival < end
            early += arrival < p.accepted
            delivery.record(max(0, int((arrival - p.accepted) * 1_000_000 + 0.5)))
            from_send.record(int((arrival - p.sent) * 1_000_000 + 0.5))

    cpu_s = max(0.0, cpu[1] - cpu[0])
    inflight = state["inflight"]
    return MixedWorkerResult(
        worker=index,
        write=_worker_result(index, recs["write"], cpu_s, loop_lag, inflight["write"]),
        read=_worker_result(index, recs["read"], cpu_s, loop_lag, inflight["read"]),
        stream=_worker_result(index, recs["stream"], cpu_s, loop_lag, inflight["stream"]),
        delivery=delivery.to_dict(), delivery_from_send=from_send.to_dict(),
        streams_opened=len(streams), streams_failed=recs["stream"].errors_total, streams_held=held, expected=expected, delivered=delivered,
        delivered_in_window=in_window, missing=max(0, expected - delivered), misdelivered=misdelivered,
        early=early, skipped_busy=state["skipped"],
    )
