"""Actor kinds: the owners of per-user, per-tenant, per-session and per-window state."""
