"""What one launch of the app holds: the case folder, the launch token, the jobs, a scratch folder."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from ingest.case import CONFIG, Case
from ingest.features.app.jobs import Jobs
from ingest.features.app.security import csrf_token


class NoCase(Exception):
    """The page needs a case and there is none yet: the start page makes or opens one."""


@dataclass
class AppState:
    case_dir: Path
    token: str
    port: int
    workdir: Path                   # 0700 scratch: uploads on their way in, bundles on their way out
    jobs: Jobs = field(default_factory=Jobs)

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)

    def has_case(self) -> bool:
        return (self.case_dir / CONFIG).exists()

    @contextmanager
    def case(self, *, writable: bool = False):
        """The case, opened for this request only: the CLI and `ingest watch` can use it in between."""
        if not self.has_case():
            raise NoCase()
        case = Case.open(self.case_dir, writable=writable)
        try:
            yield case
        finally:
            case.close()

    def scratch(self, prefix: str) -> Path:
        """A new private folder for one piece of work, inside the launch's scratch folder."""
        return Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.workdir))
