"""Demo content shipped with questline (catalogs a fresh checkout can serve)."""
