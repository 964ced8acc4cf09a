"""The diary note document: the original `ingest note` writes (ingest.features.notes) and the
`note` parser reads back (adapters/note.py). Both name its format from here, so they cannot drift."""

FORMAT = "ingest-note/1"
