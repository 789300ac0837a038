"""Servers under test, started as subprocesses, and CPU accounting from /proc.

``questline_server`` runs ``python -m questline serve`` on a free port and a
temporary data dir; ``baseline_server`` runs ``benchmarks/baseline_app.py`` with
uvicorn on the same settings. Both are waited for (``/readyz`` 200) and stopped
with SIGTERM (then SIGKILL of their own process group if they hang). Their
output goes to a log file whose tail is shown when they fail to start.

CPU is read from ``/proc`` (Linux): the server's process tree (Ray's processes
included) and the whole machine, so a result can say how much CPU the server
got and how much went to other processes (a shared, noisy machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServerError(Exception):
    """The server under test did not start or answer."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


def probe(url: str, time_limit: float = 2.0) -> tuple[int, bytes]:
    """GET ``url`` -> (status, body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=time_limit) as resp:  # noqa: S310 - local URLs
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


@dataclass
class ManagedServer:
    """A server subprocess in its own process group."""

    label: str
    argv: list[str]
    url: str
    ready_path: str = "/readyz"
    env: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None  # removed on stop
    log_path: Path | None = None
    listeners: int = 1  # --workers N: ready once N processes listen on the port, not just one
    proc: subprocess.Popen[bytes] | None = None
    _log: object | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, time_limit: float = 120.0) -> None:
        """Start and wait for ``ready_path`` to answer 200; on failure everything is
        cleaned up and :class:`ServerError` carries the tail of the server's log."""
        fd, log_name = tempfile.mkstemp(prefix="questline-bench-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log_name)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self._log = log
        self.proc = subprocess.Popen(
            self.argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **self.env}, start_new_session=True,
        )
        deadline = time.monotonic() + time_limit
        last = (0, b"")
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                error = ServerError(
                    f"{self.label} exited with code {code} before it was ready\n"
                    f"  command: {' '.join(self.argv)}\n{self.log_tail()}"
                )
                self.stop()  # removes the log and the data dir
                raise error
            last = probe(self.url + self.ready_path, time_limit=5.0)
            if last[0] == 200 and self.listening() >= self.listeners:
                return
            time.sleep(0.2)
        error = ServerError(
            f"{self.label} not ready after {time_limit:.0f} s (last {self.ready_path}: "
            f"{last[0]} {last[1][:200]!r})\n{self.log_tail()}"
        )
        self.stop()
        raise error

    def listening(self) -> int:
        """Processes of this server listening on its port: with several workers the first
        one answers /readyz while the others still start, and connections opened then
        would all land on it."""
        if self.listeners <= 1 or self.proc is None:
            return 1
        from questline.workers import listening_pids

        return len(listening_pids(parse_port(self.url), process_tree(self.proc.pid)))

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "  log tail:\n" + "\n".join("    " + line for line in text)

    def stop(self, time_limit: float = 30.0) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=time_limit)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)  # our own child's group only
                proc.wait(timeout=10)
        if proc is not None:
            # Ray's helpers are in the server's process group; do not leave any behind.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()  # type: ignore[attr-defined]
            self._log = None
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
        if self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> ManagedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


DEMO_ENV = "QUESTLINE_DEMO"
# Hatched limits each API key of a new ("free") customer to 100 requests/s and 100k events a
# month; the bench drives a whole customer's traffic through one key, so both are turned off
# (0 = off) and the scenario measures the API. Override with --server-env.
BENCH_LIMITS = {
    "HATCHED_RATE_LIMIT_FREE": os.environ.get("HATCHED_RATE_LIMIT_FREE", "0"),
    "HATCHED_EVENT_QUOTA_FREE": os.environ.get("HATCHED_EVENT_QUOTA_FREE", "0"),
}


def questline_server(
    *, runtime: str, durability: str, shards: int, workers: int = 1,
    extra_args: list[str] | None = None, env: dict[str, str] | None = None, host: str = "127.0.0.1",
) -> ManagedServer:
    """``questline serve`` as ``make run`` runs it: demo tenants loaded (``QUESTLINE_DEMO=1``,
    i.e. ``serve --demo``) unless the environment or ``env`` says otherwise."""
    port = free_port(host)
    data_dir = Path(tempfile.mkdtemp(prefix="questline-bench-data-"))
    argv = [
        sys.executable, "-m", "questline", "serve", "--host", host, "--port", str(port),
        "--runtime", runtime, "--durability", durability, "--shards", str(shards),
        "--data-dir", str(data_dir), "--log-level", "warning",
    ]
    if workers > 1:
        argv += ["--workers", str(workers)]
    argv += extra_args or []
    return ManagedServer(
        label=f"questline serve ({runtime}/{durability}, {shards} shards)",
        argv=argv, url=f"http://{host}:{port}", data_dir=data_dir, listeners=workers,
        env={DEMO_ENV: os.environ.get(DEMO_ENV, "1"), **BENCH_LIMITS, **(env or {})},
    )


def baseline_server(*, workers: int = 1, host: str = "127.0.0.1") -> ManagedServer:
    """The bare Starlette endpoint on the uvicorn settings ``serve`` uses."""
    port = free_port(host)
    argv = [sys.executable, "-m", "benchmarks.baseline_app", "--host", host, "--port", str(port),
            "--workers", str(workers)]
    return ManagedServer(label="baseline (bare Starlette on uvicorn)", argv=argv, url=f"http://{host}:{port}",
                         listeners=workers)


# -- CPU accounting ------------------------------------------------------------------
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name is in parentheses and may contain spaces
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every descendant (by parent pid), from /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return [root]
    for entry in entries:
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def process_cpu_ticks(pids: list[int]) -> dict[int, int]:
    ticks = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def machine_busy_ticks() -> int | None:
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    values = [int(v) for v in first[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


class CpuWindow:
    """CPU used by a server's process tree and by the whole machine over a window."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self._t0 = 0.0
        self._server0: dict[int, int] = {}
        self._machine0: int | None = None
        self.server_percent: float | None = None
        self.machine_percent: float | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()
        self._machine0 = machine_busy_ticks()
        if self.server_pid is not None:
            self._server0 = process_cpu_ticks(process_tree(self.server_pid))

    def stop(self) -> None:
        wall = time.monotonic() - self._t0
        if wall <= 0:
            return
        machine1 = machine_busy_ticks()
        if machine1 is not None and self._machine0 is not None:
            self.machine_percent = (machine1 - self._machine0) / _CLK_TCK / wall * 100
        if self.server_pid is not None:
            now = process_cpu_ticks(process_tree(self.server_pid))
            if now:
                used = sum(t - self._server0.get(pid, 0) for pid, t in now.items())
                self.server_percent = max(0.0, used / _CLK_TCK / wall * 100)
