"""The adapter kit: all that an adapter may import from ingest (besides the model)."""
