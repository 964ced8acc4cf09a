"""Long work (keeping uploads, reading a mailbox, making a bundle) runs on a thread of its
own; the page polls its progress. A job opens the case for itself, so the pages stay usable."""

from __future__ import annotations

import secrets
import shutil
import threading
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

from ingest.model.errors import IngestError
from ingest.pipeline import Progress

MAX_WARNINGS = 50


@dataclass
class Job:
    id: str
    title: str
    kind: str                       # "add" or "handover": which page shows the result
    done: int = 0
    total: int | None = None
    item: str = ""
    finished: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    result: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"id": self.id, "done": self.done, "total": self.total, "item": self.item,
                "finished": self.finished, "error": self.error}


class JobProgress(Progress):
    """The pipeline's progress, kept on the job for the page to read."""

    def __init__(self, job: Job):
        self.job = job

    def total(self, count):
        self.job.total = count

    def advance(self, label):
        self.job.done += 1
        self.job.item = str(label).rsplit("/", 1)[-1][-60:]

    def warn(self, message):
        if len(self.job.warnings) < MAX_WARNINGS:
            self.job.warnings.append(message)

    @contextmanager
    def factory(self, _description: str):
        """For callers that take a progress factory (export)."""
        yield self


class Jobs:
    def __init__(self):
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def all(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def start(self, title: str, kind: str, work: Callable[[Job, JobProgress], dict], *, cleanup=None) -> Job:
        """Run `work(job, progress)` on a thread; its dict becomes `job.result`. `cleanup`
        (a folder of temporary copies) is removed afterwards, whatever happened."""
        job = Job(id=secrets.token_hex(8), title=title, kind=kind)
        with self._lock:
            self._jobs[job.id] = job

        def run():
            try:
                job.result = work(job, JobProgress(job))
            except IngestError as error:
                job.error = str(error)
            except Exception as error:      # a bug: said plainly on the page, detail on the terminal
                traceback.print_exc()
                job.error = (f"Something went wrong inside ingest ({type(error).__name__}). Everything kept before "
                             "it is safe in the case.")
            finally:
                if cleanup is not None:
                    shutil.rmtree(cleanup, ignore_errors=True)
                job.finished = True

        threading.Thread(target=run, name=f"ingest-job-{job.id}", daemon=True).start()
        return job
