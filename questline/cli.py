"""Command line: ``python -m questline serve|bench ...``.

Every ``serve`` flag can also come from an environment variable
``QUESTLINE_<FLAG>`` (``--data-dir`` -> ``QUESTLINE_DATA_DIR``) so containers and
CI can configure the server without editing commands; a flag on the command
line wins over the environment, which wins over the default.

Subcommands are registered by the functions in :data:`SUBCOMMANDS`; a new one
(``import``, ``replay``, ...) is one more ``add_*`` function that sets ``handler``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from questline import __version__
from questline.engine.gc_policy import tune_for_serving

if TYPE_CHECKING:
    from questline.engine import Runtime

ENV_PREFIX = "QUESTLINE_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

Handler = Callable[[argparse.Namespace, list[str]], int]


class ConfigError(Exception):
    """A setting (flag or environment variable) has an unusable value."""


# -- value parsers (raise ValueError with a readable reason) --------------------------
def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}")
        return value

    return parse


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be one of 1/0, true/false, yes/no, on/off")


@dataclass(frozen=True)
class Option:
    """One setting: its flag, environment variable, parser, default and help text."""

    flag: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    is_switch: bool = False  # a flag without a value (``--access-log``)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.dest.upper()

    def convert(self, raw: str) -> Any:
        if self.choices is not None:
            value = raw.strip().lower()
            if value not in self.choices:
                raise ValueError(f"must be one of {', '.join(self.choices)}")
            return value
        return self.parse(raw)


SERVE_OPTIONS: tuple[Option, ...] = (
    Option("--host", str, "127.0.0.1", "interface to bind"),
    Option("--port", _int_in(0, 65535), 8080, "TCP port (0 picks a free one)"),
    Option("--runtime", str, "ray", "actor runtime hosting the shards", choices=("ray", "local")),
    Option("--shards", _int_in(1), 2, "number of shards (one SQLite file each)"),
    Option("--data-dir", Path, Path("data"), "directory of the shard files", metavar="DIR"),
    Option(
        "--durability",
        str,
        "strict",
        "strict: reply after the journal commit; relaxed: reply before it",
        choices=("strict", "relaxed"),
    ),
    Option("--snapshot-interval", _positive_float, 5.0, "seconds between snapshots", metavar="SECONDS"),
    Option("--max-resident", _int_in(1), 50_000, "resident actors per shard before passivation", metavar="N"),
    Option("--ray-address", str, None, "join an existing Ray cluster (default: start a local Ray)", metavar="ADDR"),
    Option(
        "--workers", _int_in(1), 1,
        "front-door processes sharing the port (SO_REUSEPORT); N > 1 needs --runtime ray", metavar="N",
    ),
    Option("--log-level", str, "info", "log level", choices=LOG_LEVELS),
    Option("--access-log", _bool, False, "log every request (off by default)", is_switch=True),
    Option("--max-body-bytes", _int_in(1024), 1024 * 1024, "largest request body accepted (413 past it)", metavar="BYTES"),
    Option("--body-timeout", _positive_float, 30.0, "seconds a request body may take to arrive (408 past it)", metavar="SECONDS"),
    Option("--catalog", Path, None, "QuestKit catalog file (apps, missions, campaigns)", metavar="FILE"),
    Option(
        "--demo", _bool, False,
        "load the demo tenants and allow built-in demo secrets (what `make run` does)", is_switch=True,
    ),
)


def _add_options(parser: argparse.ArgumentParser, options: Sequence[Option]) -> None:
    for opt in options:
        help_text = f"{opt.help} [env {opt.env}; default {opt.default}]"
        if opt.is_switch:
            parser.add_argument(opt.flag, dest=opt.dest, action="store_const", const=True, default=None, help=help_text)
            continue
        parser.add_argument(
            opt.flag,
            dest=opt.dest,
            default=None,  # resolved later: flag > environment > default
            metavar=opt.metavar or (None if opt.choices else opt.dest.upper()),
            choices=opt.choices,
            type=opt.parse if opt.choices is None else str,
            help=help_text,
        )


def resolve_options(
    args: argparse.Namespace, options: Sequence[Option], environ: Mapping[str, str]
) -> None:
    """Fill every option not given on the command line from the environment or its default."""
    for opt in options:
        if getattr(args, opt.dest, None) is not None:
            continue
        raw = environ.get(opt.env, "")
        if raw.strip():
            try:
                value = opt.convert(raw)
            except ValueError as exc:
                raise ConfigError(f"{opt.env}={raw!r}: {exc}") from None
        else:
            value = opt.default
        setattr(args, opt.dest, value)


# -- serve -------------------------------------------------------------------------
def add_serve(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the HTTP server", description="Run the questline HTTP server.")
    _add_options(parser, SERVE_OPTIONS)
    parser.set_defaults(handler=run_serve, options=SERVE_OPTIONS)


def _configure_logging(level_name: str) -> None:
    """Route questline's own loggers to stderr (uvicorn configures only its own)."""
    logging.basicConfig(
        level=uvicorn.config.LOG_LEVELS[level_name],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def serving_config(args: argparse.Namespace) -> tuple[list[Any], Any] | None:
    """The surfaces to serve and the engine config from the settings; None (after saying why)
    when the surfaces' configuration is invalid. Shared by ``serve`` and ``serve --workers``."""
    from questline import surfaces
    from questline.engine import EngineConfig

    if args.demo:
        # Surfaces read QUESTLINE_DEMO (demo catalogs, built-in demo secrets with a warning).
        os.environ["QUESTLINE_DEMO"] = "1"
    if args.catalog is not None:
        os.environ["QUESTLINE_CATALOG"] = str(args.catalog)
    try:
        served = surfaces.load_surfaces()
    except surfaces.SurfaceConfigError as exc:
        print(f"questline: {exc}", file=sys.stderr)
        return None
    config = EngineConfig(
        actor_classes=surfaces.actor_classes(served),
        shards=args.shards,
        data_dir=args.data_dir,
        durability=args.durability,
        snapshot_interval=args.snapshot_interval,
        max_resident=args.max_resident,
        ray_address=args.ray_address,
    )
    return served, config


def run_serve(args: argparse.Namespace, extra: list[str]) -> int:
    """Build the engine config and runtime from the settings and serve the app with uvicorn."""
    from questline import surfaces
    from questline.engine import create_runtime
    from questline.http import create_app

    _configure_logging(args.log_level)
    if args.workers > 1:
        from questline.workers import run_workers

        return run_workers(args, SERVE_OPTIONS)
    setup = serving_config(args)
    if setup is None:
        return 2
    served, config = setup
    try:
        runtime = create_runtime(args.runtime, config)
    except ModuleNotFoundError as exc:
        if args.runtime == "ray":
            print(
                f"questline: the Ray runtime cannot be loaded ({exc}); "
                "use --runtime local (or QUESTLINE_RUNTIME=local) to run every shard in this process",
                file=sys.stderr,
            )
            return 2
        raise

    app = create_app(
        runtime,
        extra_routes=surfaces.routes(served),
        on_startup=surfaces.startup_hooks(served),
        max_body_bytes=args.max_body_bytes,
        body_timeout=args.body_timeout,
    )
    server = BannerServer(
        runtime,
        bool(args.demo),
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            loop="auto",
            http="auto",
            lifespan="on",
            access_log=args.access_log,
            log_level=args.log_level,
            timeout_keep_alive=5,
            h11_max_incomplete_event_size=16 * 1024,  # caps header bytes held per stalled connection
        ),
        banner=(
            f"runtime={args.runtime} shards={args.shards} durability={args.durability} "
            f"data-dir={args.data_dir}"
        ),
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then restores the previous
    # handlers and re-raises the signal for whoever embeds it. We are the top of the
    # process and the shutdown was clean, so the replayed signal just ends the run.
    previous = {sig: signal.signal(sig, _ignore_replayed_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run(sockets=getattr(args, "sockets", None))  # pre-bound: one of `--workers` (questline.workers)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if server.started else 3


def _ignore_replayed_signal(signum: int, frame: object) -> None:
    """Installed only around ``server.run()``; uvicorn's own handler is active while serving."""


class BannerServer(uvicorn.Server):
    """A uvicorn server that prints the URL once it is really listening (port 0 included)."""

    def __init__(self, runtime: Runtime, demo: bool, config: uvicorn.Config, banner: str) -> None:
        super().__init__(config)
        self.runtime = runtime
        self.demo = demo
        self.banner = banner

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started or not getattr(self, "servers", None):
            return
        tune_for_serving()  # after the lifespan: runtime, catalogs and routes are built
        host, port = self.servers[0].sockets[0].getsockname()[:2]
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        url = f"http://{host}:{port}"
        print(
            f"questline {__version__} listening on {url}  ({self.banner})\n"
            f"  liveness  {url}/healthz\n"
            f"  readiness {url}/readyz",
            flush=True,
        )
        cluster = getattr(self.runtime, "cluster_address", None)
        if cluster:
            print(
                f"  ray cluster {cluster}  (more front doors: serve --runtime ray --ray-address {cluster} "
                f"with the same --data-dir and --shards)",
                flush=True,
            )
        if self.demo:
            from questline.demo.questkit import demo_curl_sequence

            print("\n" + demo_curl_sequence(url), flush=True)


# -- bench -------------------------------------------------------------------------
BENCH_MODULE = "benchmarks.run"


def add_bench(sub: argparse._SubParsersAction) -> None:
    # add_help=False: --help and every other argument belong to the benchmark harness.
    parser = sub.add_parser("bench", help="run the load-test harness (benchmarks/run.py)", add_help=False)
    parser.set_defaults(handler=run_bench, passthrough=True)


def run_bench(args: argparse.Namespace, extra: list[str]) -> int:
    """Hand the remaining arguments to ``benchmarks.run.main`` (loaded only when asked for)."""
    return run_harness(BENCH_MODULE, extra)


def run_harness(module_name: str, extra: list[str]) -> int:
    """``<module_name>.main(extra)``: the harnesses live in the repository's ``benchmarks/``, not the package."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "the harness is not there" is reported as such; a broken import inside it is a bug.
        if exc.name not in ("benchmarks", module_name):
            raise
        print(
            f"questline: benchmarks not available yet ({module_name} not found; run from the repository root)",
            file=sys.stderr,
        )
        return 2
    result = module.main(list(extra))
    return result if isinstance(result, int) else 0


# -- chaos -------------------------------------------------------------------------
CHAOS_MODULE = "benchmarks.chaos"


def add_chaos(sub: argparse._SubParsersAction) -> None:
    # Like bench: every argument belongs to the chaos harness (benchmarks/chaos.py).
    parser = sub.add_parser("chaos", help="run the fault and overload scenarios (benchmarks/chaos.py)", add_help=False)
    parser.set_defaults(handler=run_chaos, passthrough=True)


def run_chaos(args: argparse.Namespace, extra: list[str]) -> int:
    """Hand the remaining arguments to ``benchmarks.chaos.main`` (loaded only when asked for)."""
    return run_harness(CHAOS_MODULE, extra)


# -- entry point -------------------------------------------------------------------
def add_questmaster_token(sub: argparse._SubParsersAction) -> None:
    from questline.http.questmaster import add_questmaster_token as add

    add(sub)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_serve, add_bench, add_chaos, add_questmaster_token,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m questline",
        description="questline: a self-hosted progression engine.",
    )
    parser.add_argument("--version", action="version", version=f"questline {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(list(sys.argv[1:] if argv is None else argv))
    if extra and not getattr(args, "passthrough", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        resolve_options(args, getattr(args, "options", ()), os.environ if environ is None else environ)
    except ConfigError as exc:
        parser.error(str(exc))
    handler: Handler = args.handler
    return handler(args, extra)
