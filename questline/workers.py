"""``serve --workers N``: N front-door processes on one port, sharing the Ray shards.

Why not uvicorn's own ``workers=``: it needs the app as an import string (our
app is built from the parsed settings, runtime included) and hands every worker
one shared listening socket, on which Linux wakes the most recent waiter first,
so under load one worker takes most connections. Instead every worker binds
its own socket with ``SO_REUSEPORT`` and the kernel spreads connections over
the listening sockets by hash, evenly. A worker only listens once its
lifespan (runtime join, surface start-up hooks) is done, so it never gets a
connection it cannot serve.

The local runtime keeps the shards in the serving process and each shard file
has exactly one owner (flock), so N > 1 needs ``--runtime ray``: this process
starts Ray and the shard actors once (the workers' ``RayRuntime`` finds them by
name and does not own them), then starts N ``python -m questline.workers``
children, each a plain ``serve`` joined with ``--ray-address``. If a worker
dies the others are stopped and serve exits non-zero rather than silently
serving with fewer; SIGTERM/SIGINT stop the workers, then the shards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("questline.workers")

STOP_TIMEOUT_S = 30.0
LOCAL_REFUSAL = (
    "--workers {n} needs --runtime ray: the local runtime keeps every shard inside the serving "
    "process and a shard file has exactly one owner (flock), so a second front-door process could "
    "not open them. Use --runtime ray (the workers share the Ray shards) or --workers 1."
)


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A bound (not yet listening) TCP socket that other processes may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


# -- /proc: who listens on a port (readiness of every worker, and tests) -------------
def _listening_inodes(port: int) -> set[int]:
    inodes: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode:
                inodes.add(inode)
    return inodes


def socket_owners(inodes: set[int], pids: Sequence[int]) -> dict[int, set[int]]:
    """For each pid, which of ``inodes`` (sockets) it holds an fd of."""
    owners: dict[int, set[int]] = {}
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inode = int(target[8:-1])
                if inode in inodes:
                    owners.setdefault(pid, set()).add(inode)
    return owners


def listening_pids(port: int, pids: Sequence[int]) -> dict[int, set[int]]:
    """Which of ``pids`` hold a socket listening on ``port`` (pid -> socket inodes)."""
    return socket_owners(_listening_inodes(port), pids)


# -- the parent ------------------------------------------------------------------------
def child_argv(args: argparse.Namespace, options: Sequence[object], *, port: int, cluster: str) -> list[str]:
    """``serve`` flags for one worker: the resolved settings, one worker, the cluster to join."""
    argv: list[str] = []
    overrides = {"workers": "1", "port": str(port), "ray_address": cluster}
    for opt in options:
        dest, flag = opt.dest, opt.flag  # type: ignore[attr-defined]
        value = overrides.get(dest, getattr(args, dest, None))
        if getattr(opt, "is_switch", False):
            if value:
                argv.append(flag)
        elif value is not None:
            argv += [flag, str(value)]
    return argv


def run_workers(args: argparse.Namespace, options: Sequence[object]) -> int:
    """Start the Ray shards here, then ``args.workers`` front doors joined to them; wait; stop all."""
    from questline.cli import serving_config
    from questline.engine import create_runtime

    if args.runtime != "ray":
        print(f"questline: {LOCAL_REFUSAL.format(n=args.workers)}", file=sys.stderr)
        return 2
    setup = serving_config(args)
    if setup is None:
        return 2
    _, config = setup
    try:
        runtime = create_runtime("ray", config)
    except ModuleNotFoundError as exc:
        print(f"questline: the Ray runtime cannot be loaded ({exc}); --workers needs it", file=sys.stderr)
        return 2
    asyncio.run(runtime.start())
    cluster = getattr(runtime, "cluster_address", None)
    placeholder: socket.socket | None = None
    procs: list[subprocess.Popen[bytes]] = []
    stopping: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        if not cluster:
            print("questline: the Ray runtime has no cluster address to share", file=sys.stderr)
            return 2
        # Reserves the port (and resolves port 0) for the workers; never listens itself.
        placeholder = reuseport_socket(args.host, args.port)
        port = int(placeholder.getsockname()[1])
        argv = child_argv(args, options, port=port, cluster=cluster)
        for _ in range(args.workers):
            procs.append(subprocess.Popen([sys.executable, "-m", "questline.workers", *argv]))
        announced = False
        while not stopping:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                print(f"questline: worker {dead[0].pid} exited with code {dead[0].returncode}; "
                      "stopping the others", file=sys.stderr)
                code = 3
                break
            if not announced and len(listening_pids(port, [p.pid for p in procs])) == len(procs):
                host = f"[{args.host}]" if ":" in args.host else args.host
                print(f"questline: {len(procs)} workers listening on http://{host}:{port} "
                      f"(pids {' '.join(str(p.pid) for p in procs)}; ray cluster {cluster})", flush=True)
                announced = True
            time.sleep(0.2)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if placeholder is not None:
            placeholder.close()
        asyncio.run(runtime.stop())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


# -- one worker ------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m questline.workers <serve flags>``: one front door on a SO_REUSEPORT socket."""
    from questline import cli

    parser = cli.build_parser()
    args = parser.parse_args(["serve", *(sys.argv[1:] if argv is None else argv)])
    cli.resolve_options(args, args.options, os.environ)
    args.sockets = [reuseport_socket(args.host, args.port)]
    return cli.run_serve(args, [])


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
