"""Handing over (the bundle, the key fingerprint, the seal code) and the people in the case."""

from __future__ import annotations

import zipfile
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ingest.features.app.forms import read_form
from ingest.features.app.routes import fingerprint, render, see, state_of
from ingest.features import parties

BUNDLE = "bundle.zip"
# What an officer reads first, in the order offered: the PDF where the bundle has one.
REPORTS = ("report.pdf", "report.html")


def handover_page(request: Request):
    state = state_of(request)
    with state.case() as case:
        key = fingerprint(case)
        records = case.index.count_records()
    bundles = [job for job in state.jobs.all() if job.kind == "handover" and job.finished and not job.error]
    return render(request, "handover.html.j2", page="handover", title="Hand over", fingerprint=key, records=records,
                  bundles=bundles[::-1])


async def make_bundle(request: Request):
    """The bundle (ingest.features.export), made on a job thread into the scratch folder: the
    person downloads it from the page."""
    from ingest.features.export import export_bundle

    state = state_of(request)
    await read_form(request, state.token)
    folder = state.scratch("bundle")

    def work(job, progress):
        with state.case(writable=True) as case:
            result = export_bundle(case, folder / BUNDLE, progress_factory=progress.factory)
        return {"folder": str(folder), "records": result.records, "files": result.files,
                "fingerprint": result.fingerprint, "seal": result.seal, "reports": _reports(folder / BUNDLE)}

    job = state.jobs.start("Making the bundle", "handover", work)
    return see(f"/jobs/{job.id}")


def _reports(bundle: Path) -> list[str]:
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    return [report for report in REPORTS if any(name.endswith("/" + report) for name in names)]


def download(request: Request):
    """The bundle itself, or the report inside it."""
    job = state_of(request).jobs.get(request.path_params["job_id"])
    if job is None or job.kind != "handover" or not job.finished or job.error:
        raise HTTPException(404, "This bundle is not here any more. Make it again from the Hand over page.")
    bundle = Path(job.result["folder"]) / BUNDLE
    name = request.path_params["name"]
    if name == BUNDLE:
        return FileResponse(bundle, media_type="application/zip", filename=BUNDLE)
    if name not in job.result["reports"]:
        raise HTTPException(404, "The bundle has no such file.")
    with zipfile.ZipFile(bundle) as archive:
        member = next(item for item in archive.namelist() if item.endswith("/" + name))
        data = archive.read(member)
    media = "application/pdf" if name.endswith(".pdf") else "text/html"
    return Response(data, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                     "Content-Security-Policy": "sandbox; default-src 'none'"})


# --- people ---------------------------------------------------------------------------------
def people_page(request: Request):
    state = state_of(request)
    with state.case() as case:
        listed = parties.list_parties(case)
        suggestions = parties.suggest(case)
    return render(request, "people.html.j2", page="people", title="People", parties=listed, suggestions=suggestions)


async def people_change(request: Request):
    """Add a person, or link more numbers, addresses or names to one (also: accept a suggestion)."""
    state = state_of(request)
    form = await read_form(request, state.token)
    action = request.path_params["action"]
    if action not in ("add", "link"):
        raise HTTPException(404, "There is no such page.")
    identifiers = {kind: form.items(kind) for kind in ("phones", "emails", "aliases", "handles")}
    with state.case(writable=True) as case:
        if action == "add":
            parties.add_party(case, form.get("name"), **identifiers, note=form.get("note") or None)
        else:
            parties.link(case, form.get("name"), **identifiers)
    return see("/people")


async def mark(request: Request):
    """Mark a record (asked to stop, a threat, reported to the police): an overlay, the record unchanged."""
    state = state_of(request)
    form = await read_form(request, state.token)
    record_id = request.path_params["record_id"]
    with state.case(writable=True) as case:
        parties.mark(case, record_id, as_=form.get("as"), reference=form.get("reference") or None)
    return see(f"/records/{record_id}")


routes = [
    Route("/handover", handover_page),
    Route("/handover", make_bundle, methods=["POST"]),
    Route("/handover/{job_id}/{name}", download),
    Route("/people", people_page),
    Route("/people/{action:str}", people_change, methods=["POST"]),
    Route("/records/{record_id}/mark", mark, methods=["POST"]),
]
