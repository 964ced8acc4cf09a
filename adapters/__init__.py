"""One module per source (where originals come from) or parser (what they mean).

Each module registers its classes with `ingest.kit.registry.register`; the registry
imports every module here, so adding a module is all it takes.
"""
