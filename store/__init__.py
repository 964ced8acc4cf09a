"""The case on disk: write-once object store, SQLite index, hash-chained custody log.

Nothing here knows about sources or formats; the pipeline joins them.
"""
