"""ingest: preserve evidence of stalking and harassment so that it stands up.

The library API mirrors the CLI: `ingest.case.Case.open(path)`, then
`ingest.pipeline.run(case, source, parser)`.
"""

__version__ = "0.1.0"
TOOL = f"ingest {__version__}"
