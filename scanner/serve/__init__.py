"""vscan serve: the HMA-compatible match service (vscan.serve.app)."""
