"""Loading QuestKit apps from a catalog file and registering them with their actors.

File format (JSON, or YAML when the name ends in .yaml/.yml)::

    {"apps": [{"appId": "demo",
               "appSecret": "..."            # or "appSecretEnv": "VAR" [+ "appSecretDefault"]
               "webhookSecret": "..."        # optional; or "webhookSecretEnv" [+ "webhookSecretDefault"]
               "missions": [Mission, ...], "campaigns": [Campaign, ...]}]}

Missions and campaigns use exactly the wire shapes of ``reference/questkit.md``.
Every app is validated before any is installed, so a bad file changes nothing.
Installing is idempotent: the app actor re-hashes a changed secret and bumps the
catalog version only when the catalog changed, and users' progress lives in
their own actors, so restarting with the same file resets nothing.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from questline.actors.questkit_common import app_address, canonical_catalog_json, valid_app_id
from questline.engine import Runtime
from questline.rules.questkit_models import Catalog, CatalogError, convert, validate_catalog

log = logging.getLogger("questline.questkit")

CATALOG_ENV = "QUESTLINE_CATALOG"


class CatalogFileError(ValueError):
    """The catalog file cannot be used (unreadable, malformed, or an invalid app)."""


@dataclass(frozen=True)
class AppSpec:
    """One app of the file, validated and ready to install."""

    app_id: str
    app_secret: str
    webhook_secret: str | None
    catalog_json: bytes


def _secret(entry: Mapping[str, Any], name: str, where: str, environ: Mapping[str, str], required: bool) -> str | None:
    """``name`` literally, or from the variable ``<name>Env`` (falling back to ``<name>Default``)."""
    literal = entry.get(name)
    if literal is not None:
        if not isinstance(literal, str) or not literal:
            raise CatalogFileError(f"{where}.{name} must be a non-empty string")
        return literal
    env_name = entry.get(f"{name}Env")
    if env_name is not None:
        if not isinstance(env_name, str) or not env_name:
            raise CatalogFileError(f"{where}.{name}Env must name an environment variable")
        value = environ.get(env_name, "")
        if value:
            return value
        default = entry.get(f"{name}Default")
        if isinstance(default, str) and default:
            log.warning(
                "%s: %s is not set; using the built-in default %s - set it for any real deployment",
                where, env_name, name,
            )
            return default
        raise CatalogFileError(f"{where}: environment variable {env_name} is not set")
    if required:
        raise CatalogFileError(f"{where} needs {name} or {name}Env")
    return None


def parse_catalog_file(path: str | Path, environ: Mapping[str, str] | None = None) -> list[AppSpec]:
    """Read and validate every app of the file (raises CatalogFileError naming the problem)."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogFileError(f"cannot read catalog file {path}: {exc}") from exc
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as exc:
        raise CatalogFileError(f"{path}: not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from exc
    apps = doc.get("apps") if isinstance(doc, dict) else None
    if not isinstance(apps, list):
        raise CatalogFileError(f'{path}: expected {{"apps": [...]}}')
    specs: list[AppSpec] = []
    seen: set[str] = set()
    for i, entry in enumerate(apps):
        where = f"{path}: apps[{i}]"
        if not isinstance(entry, dict):
            raise CatalogFileError(f"{where} must be an object")
        app_id = entry.get("appId")
        if not valid_app_id(app_id):
            raise CatalogFileError(f"{where}.appId must match [A-Za-z0-9][A-Za-z0-9._-]{{0,63}}")
        if app_id in seen:
            raise CatalogFileError(f"{where}: duplicate appId {app_id!r}")
        seen.add(app_id)
        where = f"{path}: app {app_id!r}"
        secret = _secret(entry, "appSecret", where, environ, required=True)
        webhook = _secret(entry, "webhookSecret", where, environ, required=False)
        raw = {
            "appId": app_id,
            "missions": entry.get("missions", []),
            "campaigns": entry.get("campaigns", []),
        }
        try:
            catalog = convert(raw, Catalog, CatalogError)
            validate_catalog(catalog)
        except CatalogError as exc:
            raise CatalogFileError(f"{where}: {exc}") from exc
        assert secret is not None
        specs.append(AppSpec(app_id, secret, webhook, canonical_catalog_json(catalog)))
    return specs


async def install_apps(runtime: Runtime, specs: list[AppSpec]) -> list[dict[str, Any]]:
    """Register or update each app through its actor; one result dict per app."""
    results: list[dict[str, Any]] = []
    for spec in specs:
        reply = await runtime.call(
            app_address(spec.app_id), "install", spec.app_secret, spec.catalog_json, spec.webhook_secret
        )
        if "error" in reply:
            raise CatalogFileError(f"app {spec.app_id!r}: {reply['message']}")
        log.info(
            "questkit app %s: %s, catalog version %s%s",
            spec.app_id,
            "created" if reply["created"] else "up to date" if not reply["changed"] else "updated",
            reply["version"],
            " (changed)" if reply["changed"] and not reply["created"] else "",
        )
        results.append({"appId": spec.app_id, **reply})
    return results


async def install_catalogs(
    runtime: Runtime, path: str | Path, environ: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """Load ``path`` and install every app in it (call once the runtime has started)."""
    return await install_apps(runtime, parse_catalog_file(path, environ))


def catalog_path(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The catalog file to serve: ``path`` (``--catalog``), else ``$QUESTLINE_CATALOG``, else the demo app."""
    environ = os.environ if environ is None else environ
    if path:
        return Path(path)
    if environ.get(CATALOG_ENV, "").strip():
        return Path(environ[CATALOG_ENV].strip())
    from questline.demo.questkit import DEMO_CATALOG_PATH

    return DEMO_CATALOG_PATH


def catalog_startup_hook(path: str | Path | None = None) -> Callable[[Runtime], Awaitable[None]]:
    """A server startup hook installing the catalog file (run after the runtime has started).

    The file is parsed and validated at once, so a bad file stops the server
    before it starts listening rather than on the first request.
    """
    resolved = catalog_path(path)
    specs = parse_catalog_file(resolved)

    async def install(runtime: Runtime) -> None:
        await install_apps(runtime, specs)

    return install
