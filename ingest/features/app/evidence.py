"""Adding evidence: uploads and a mailbox (kept on a job thread, with progress), and the diary."""

from __future__ import annotations

import shutil

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ingest import pipeline
from ingest.features.app.forms import read_form
from ingest.features.app.routes import render, see, state_of
from ingest.features.parties import list_parties
from ingest.kit import registry
from ingest.model.errors import UsageError

IMAP_SECURITY = ("ssl", "starttls", "none")


def add_page(request: Request):
    state = state_of(request)
    if not state.has_case():
        return see("/")
    return render(request, "add.html.j2", page="add", title="Add evidence")


async def upload(request: Request):
    """Files, folders and zips from the drop zone or the pickers: streamed to a scratch folder,
    then kept with the format detected from each file's content. The scratch copies go
    afterwards; the originals are in the case."""
    state = state_of(request)
    if not state.has_case():
        return see("/")
    folder = state.scratch("upload")
    try:
        form = await read_form(request, state.token, upload_dir=folder)
        if not form.files:
            raise UsageError("No file was chosen.", hint="Drop files on the box, or choose them with the buttons.")
    except BaseException:
        _remove(folder)
        raise
    count = len(form.files)
    source_cls, _parser = registry.resolve_preset("files")

    def work(job, progress):
        with state.case(writable=True) as case:
            # known as upload/<name>: the scratch copy is gone once kept
            summary = pipeline.run(case, source_cls([folder], {"key_base": "upload"}), None, progress=progress)
        return {"summary": summary.to_json(), "files": count}

    job = state.jobs.start(f"Keeping {count} file(s)", "add", work, cleanup=folder)
    return see(f"/jobs/{job.id}")


async def imap(request: Request):
    """A mailbox over IMAP. The password lives in this request and the job's source only:
    it is never written anywhere."""
    state = state_of(request)
    form = await read_form(request, state.token)
    security = form.get("security") or "ssl"
    if security not in IMAP_SECURITY:
        raise UsageError("Choose how the connection is protected.")
    options = {"host": form.get("host"), "user": form.get("user"), "password": form.get("password"),
               "security": security, "port": form.get("port") or None,
               "folders": form.items("folders", commas=False) or None,
               "since": form.get("since") or None}
    if not options["host"] or not options["user"] or not options["password"]:
        raise UsageError("The mail server, your login and the password are all needed.")
    if options["port"] and not str(options["port"]).isdigit():
        raise UsageError(f"{options['port']!r} is not a port number.", hint="Leave it empty for the usual one.")
    source_cls, parser_cls = registry.resolve_preset("imap")
    source = source_cls([], {key: value for key, value in options.items() if value})
    options.clear()

    def work(job, progress):
        with state.case(writable=True) as case:
            summary = pipeline.run(case, source, parser_cls(None), progress=progress)
        return {"summary": summary.to_json()}

    job = state.jobs.start(f"Keeping the mailbox {source.user} on {source.host}", "add", work)
    return see(f"/jobs/{job.id}")


def job_page(request: Request):
    job = _job(request)
    return render(request, "job.html.j2", page=job.kind, title=job.title, job=job)


def job_json(request: Request):
    return JSONResponse(_job(request).to_json())


def _job(request: Request):
    job = state_of(request).jobs.get(request.path_params["job_id"])
    if job is None:
        raise HTTPException(404, "This piece of work is not known (the app may have been restarted).")
    return job


# --- diary --------------------------------------------------------------------------------
DETAILS = ("who", "vehicle_make", "vehicle_colour", "vehicle_plate", "appearance")


def diary_page(request: Request):
    state = state_of(request)
    with state.case() as case:
        from ingest.features import timeline

        notes = list(timeline.records(case, kinds=["note"]))[-20:][::-1]
        correcting = case.index.record(request.query_params["correct"]) if request.query_params.get("correct") else None
        names = [party["name"] for party in list_parties(case)]
    return render(request, "diary.html.j2", page="diary", title="Write down what happened", notes=notes,
                  correcting=correcting if correcting and correcting["kind"] == "note" else None, names=names)


async def diary_add(request: Request):
    """A diary entry: a note with its details and attachments. A correction is a new note
    that supersedes the old one; nothing is edited."""
    from ingest.features.notes import add_note

    state = state_of(request)
    folder = state.scratch("diary")
    try:
        form = await read_form(request, state.token, upload_dir=folder)
        text = form.get("what")
        day, time = form.get("date"), form.get("time")
        details = {key: form.get(key) for key in DETAILS if form.get(key)}
        if form.get("who_party"):
            details["party"] = form.get("who_party")
        if form.get("about"):
            details["time_approximate"] = True
        if day and not time:
            details["time_unknown"] = True
        with state.case(writable=True) as case:
            record = add_note(case, text, at=f"{day} {time or '00:00'}" if day else None,
                              where=form.get("where") or None, attachments=form.files,
                              supersedes=form.get("supersedes") or None, details=details or None)
    finally:
        _remove(folder)
    return see(f"/records/{record['id']}")


def _remove(folder) -> None:
    shutil.rmtree(folder, ignore_errors=True)


routes = [
    Route("/add", add_page),
    Route("/add/upload", upload, methods=["POST"]),
    Route("/add/imap", imap, methods=["POST"]),
    Route("/jobs/{job_id}", job_page),
    Route("/jobs/{job_id}/progress", job_json),
    Route("/diary", diary_page),
    Route("/diary", diary_add, methods=["POST"]),
]
