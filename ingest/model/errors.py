"""The few errors ingest expects. The CLI turns each into one line and an exit code."""


class IngestError(Exception):
    """An expected failure, with a message written for the person using ingest."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}" if self.hint else self.message


class CaseError(IngestError):
    """The case folder is missing, not a case, or cannot be used."""

    exit_code = 2


class CustodyBroken(CaseError):
    """The custody log was changed after it was written: nothing more may be appended to it."""

    def __init__(self, line: int, problem: str):
        super().__init__(f"The custody log of this case was altered (line {line} {problem}).",
                         hint="Nothing was written. Run `ingest verify` to see what changed.")
        self.line = line


class StorageFailed(IngestError):
    """The disk holding the case refused a write (full, failing, or read-only)."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None, errno: int | None = None):
        super().__init__(message, hint=hint)
        self.errno = errno


class UsageError(IngestError):
    """The command was asked for something it cannot do as given."""

    exit_code = 2


class SourceError(IngestError):
    """A source could not be read at all (missing path, no permission, server refused)."""

    exit_code = 3

    def __init__(self, message: str, *, hint: str | None = None, location: str | None = None):
        super().__init__(message, hint=hint)
        self.location = location


class AuthError(SourceError):
    """A server refused the credentials."""


class OriginalChanged(IngestError):
    """A file changed while it was being read, so its bytes cannot be trusted."""

    def __init__(self, location: str):
        super().__init__(f"{location} changed while it was being read; it was not kept.",
                         hint="Run again once nothing is writing to it.")
        self.location = location


class RegistryError(IngestError):
    """Two adapters claim the same name, or a name is unknown."""

    exit_code = 2
