"""The app's pages: routes as a list, one small function per page, each one library call."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ingest.case import PUBLIC_KEY, Case, check_region, check_timezone, key_fingerprint
from ingest.features import parties, timeline
from ingest.features.parties import MARKS
from ingest.features.app import settings
from ingest.features.app.forms import read_form
from ingest.features.app.security import Guard
from ingest.features.app.state import AppState, NoCase
from ingest.model.errors import IngestError, UsageError
from ingest.model.times import iso_utc, parse_user_time

PAGE_SIZE = 100
COUNT_LIMIT = 10_000      # past this the page says "more than": counting 100,000 would cost more than the page
# The kinds a record can be (DESIGN.md), offered as a filter: listing the case's own would scan it.
KINDS = ["call", "email", "attachment", "file", "image", "mms", "note", "screenshot", "sms", "unparsed", "whatsapp"]
STATIC = Path(__file__).parent / "static"
NAV = [("start", "/", "Start"), ("add", "/add", "Add evidence"), ("diary", "/diary", "Write down what happened"),
       ("timeline", "/timeline", "Timeline"), ("people", "/people", "People"), ("handover", "/handover", "Hand over"),
       ("settings", "/settings", "Settings")]

templates = Environment(loader=PackageLoader("ingest.features.app", "templates"),
                        autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    state: AppState = request.app.state.ingest
    page = templates.get_template(name).render(
        csrf=state.csrf, exit_site=settings.load()["exit_site"], nav=NAV, case_dir=state.case_dir,
        has_case=state.has_case(), **context)
    return HTMLResponse(page, status_code=status)


def state_of(request: Request) -> AppState:
    return request.app.state.ingest


def see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


# --- start ---------------------------------------------------------------------------
def start(request: Request):
    state = state_of(request)
    context = {"timezone": settings.system_timezone(), "region": settings.system_region()}
    if state.has_case():
        with state.case() as case:
            context.update(case=case.config, records=case.index.count_records(), owner=_owner(case))
    return render(request, "start.html.j2", page="start", title="Start", **context)


def _owner(case: Case) -> dict | None:
    return next((party for party in parties.list_parties(case) if party["me"]), None)


async def create_case(request: Request):
    state = state_of(request)
    form = await read_form(request, state.token)
    folder = Path(form.get("folder") or state.case_dir).expanduser()
    case = Case.init(folder, name=form.get("name") or None, timezone=check_timezone(form.get("timezone")),
                     region=check_region(form.get("region")), operator=form.get("operator") or None)
    case.close()
    state.case_dir = folder
    return see("/")


async def open_case(request: Request):
    state = state_of(request)
    form = await read_form(request, state.token)
    folder = Path(form.get("folder")).expanduser()
    Case.open(folder, writable=False).close()       # says plainly when it is not a case
    state.case_dir = folder
    return see("/")


async def owner(request: Request):
    """The owner's own numbers and addresses: a party marked `me`."""
    state = state_of(request)
    form = await read_form(request, state.token)
    phones, emails = form.items("phones"), form.items("emails")
    with state.case(writable=True) as case:
        current = _owner(case)
        if current:
            parties.link(case, current["name"], phones=phones, emails=emails)
        else:
            parties.add_party(case, form.get("name") or case.config.operator, phones=phones, emails=emails, me=True)
    return see("/")


# --- settings --------------------------------------------------------------------------
async def settings_page(request: Request):
    state = state_of(request)
    saved = False
    if request.method == "POST":
        form = await read_form(request, state.token)
        settings.save_exit_site(form.get("exit_site"))
        saved = True
    return render(request, "settings.html.j2", page="settings", title="Settings", saved=saved,
                  default_exit=settings.DEFAULT_EXIT_SITE)


# --- timeline and records ---------------------------------------------------------------
def timeline_page(request: Request):
    state = state_of(request)
    query = request.query_params
    filters = {key: query.get(key, "").strip() for key in ("q", "kind", "party", "since", "until")}
    after, before = _place(query.get("after")), _place(query.get("before"))
    with state.case() as case:
        selection = dict(kinds=[filters["kind"]] if filters["kind"] else None,
                         since=_day(case, filters["since"]), until=_day(case, filters["until"], end=True),
                         identifiers=parties.values_of(case, [filters["party"]]) if filters["party"] else None,
                         match=filters["q"] or None)
        try:
            rows = case.index.page(**selection, after=after, before=before, limit=PAGE_SIZE + 1)
            total = case.index.count_matching(**selection, limit=COUNT_LIMIT + 1)
        except sqlite3.OperationalError:         # an FTS query SQLite cannot read
            raise UsageError(f"Cannot search for {filters['q']!r}.",
                             hint='Search for words, or put a phrase in double quotes: "at the door".') from None
        more = len(rows) > PAGE_SIZE
        rows = (rows[1:] if before else rows[:PAGE_SIZE]) if more else rows
        book = parties.PartyBook.load(case)
        records = [book.annotate(record) for _place_, record in rows]
        corrected = _corrections(case, records)
        names = [party["name"] for party in parties.list_parties(case)]
    earlier = _link(filters, before=rows[0][0]) if rows and (after or (before and more)) else None
    later = _link(filters, after=rows[-1][0]) if rows and (before or more) else None
    return render(request, "timeline.html.j2", page="timeline", title="Timeline", filters=filters, total=total,
                  count_limit=COUNT_LIMIT,
                  records=records, corrected=corrected, kinds=KINDS, names=names, earlier=earlier, later=later,
                  one_line=timeline.one_line)


def _place(text: str | None) -> tuple[str, int] | None:
    if not text or "~" not in text:
        return None
    sort_time, _sep, rowid = text.rpartition("~")
    return (sort_time, int(rowid)) if rowid.isdigit() else None


def _link(filters: dict, **place) -> str:
    from urllib.parse import urlencode

    (key, (sort_time, rowid)), = place.items()
    kept = {name: value for name, value in filters.items() if value}
    return "/timeline?" + urlencode({**kept, key: f"{sort_time}~{rowid}"})


def _day(case: Case, text: str, *, end: bool = False) -> str | None:
    """A date from the filter form, as the UTC bound of that day in the case's zone."""
    if not text:
        return None
    from datetime import timedelta

    moment = parse_user_time(text, case.config.timezone).moment
    return iso_utc(moment + timedelta(days=1) if end else moment)


def _corrections(case: Case, records: list[dict]) -> dict[str, list[str]]:
    if not any(record["kind"] == "note" for record in records):
        return {}
    from ingest.features.notes import corrections

    return corrections(case)


def record_page(request: Request):
    state = state_of(request)
    with state.case() as case:
        record = timeline.record(case, request.path_params["record_id"])
        if record is None:
            raise HTTPException(404, "There is no record with this id in the case.")
        children = case.index.children(record["id"])
        parent = case.index.record(record["parent"]) if record.get("parent") else None
        corrected_by = _corrections(case, [record]).get(record["id"], [])
    return render(request, "record.html.j2", page="timeline", title=f"{record['kind'].capitalize()} record",
                  record=record, children=children, parent=parent, corrected_by=corrected_by, marks=MARKS)


def original(request: Request):
    """The original's bytes, as a download only: never shown inside the app's own origin."""
    state = state_of(request)
    with state.case() as case:
        record = case.index.record(request.path_params["record_id"])
        if record is None:
            raise HTTPException(404, "There is no record with this id in the case.")
        path = case.objects.path(record["original"]["blake3"])
    from ingest.features.export import sanitise

    return FileResponse(path, media_type="application/octet-stream", filename=sanitise(record["original"]["filename"]),
                        headers={"Content-Security-Policy": "sandbox; default-src 'none'"})


def fingerprint(case: Case) -> str:
    return key_fingerprint((case.root / PUBLIC_KEY).read_bytes())


# --- errors ------------------------------------------------------------------------------
async def plain_problem(request: Request, error: IngestError):
    return render(request, "problem.html.j2", status=400, page=None, title="That did not work",
                  message=error.message, hint=error.hint)


async def http_problem(request: Request, error: HTTPException):
    if error.status_code in (403, 404, 400, 413):
        return render(request, "problem.html.j2", status=error.status_code, page=None, title="That did not work",
                      message=error.detail, hint=None)
    return Response(error.detail, status_code=error.status_code)


async def no_case(request: Request, _error: NoCase):
    return see("/")


def create_app(state: AppState) -> Starlette:
    from ingest.features.app import evidence, handover

    routes = [
        Route("/", start),
        Route("/case/new", create_case, methods=["POST"]),
        Route("/case/open", open_case, methods=["POST"]),
        Route("/case/owner", owner, methods=["POST"]),
        Route("/settings", settings_page, methods=["GET", "POST"]),
        *evidence.routes,
        Route("/timeline", timeline_page),
        Route("/records/{record_id}", record_page),
        Route("/records/{record_id}/original", original),
        *handover.routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={IngestError: plain_problem, HTTPException: http_problem,
                                                       NoCase: no_case})
    app.state.ingest = state
    return Guard(app, token=state.token, port=state.port)
