"""Pure progression logic: wire models, filters, windows, mission states, ledgers.

Nothing here does I/O, reads the clock or imports another questline package, so
every rule can be unit-tested in isolation and replayed deterministically by the
actors that own the state (``now_ms`` is always passed in).
"""
