"""L1 settlement contract sources and the Python client (not yet built: see README)."""
