"""Pages under /console/schedules: the tenant's recurring events, each one's runs, and
pausing, resuming or running one now (created and changed through the API)."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.response import Redirect, Template

from app.console.base import CheckedForm, Session
from app.console.rendering import go, render
from app.dependencies import Transaction
from app.identifiers import IdPath, parse_id
from app.pagination import Cursor
from app.schedules import services
from app.scopes import SCHEDULES_MANAGE

PAGE_SIZE = 100


class SchedulePages(Controller):
    """The tenant's schedules."""

    path = "/schedules"
    opt = {"scope": SCHEDULES_MANAGE}  # noqa: RUF012

    @get("/", name="schedules")
    async def list_schedules(
        self, session: Session, conn: Transaction, cursor: Cursor = None
    ) -> Template:
        page = await services.list_page(conn, session.principal.tenant_id, cursor, PAGE_SIZE)
        return render(session, "schedules.html", active="/schedules", page=page)

    @get("/{schedule_id:str}", name="schedule")
    async def show_schedule(
        self, session: Session, conn: Transaction, schedule_id: IdPath
    ) -> Template:
        tenant_id, found = session.principal.tenant_id, parse_id(schedule_id, "schedule_id")
        schedule = await services.get(conn, tenant_id, found)
        runs = await services.runs_page(conn, tenant_id, found, None, PAGE_SIZE)
        return render(session, "schedule.html", active="/schedules", schedule=schedule, runs=runs)

    @post("/{schedule_id:str}/pause", name="schedule_pause")
    async def pause_schedule(
        self, session: Session, form: CheckedForm, conn: Transaction, schedule_id: IdPath
    ) -> Redirect:
        found = parse_id(schedule_id, "schedule_id")
        await services.set_paused(conn, session.principal.tenant_id, found, paused=True)
        return go(f"{session.base}/schedules/{found}?notice=paused")

    @post("/{schedule_id:str}/resume", name="schedule_resume")
    async def resume_schedule(
        self, session: Session, form: CheckedForm, conn: Transaction, schedule_id: IdPath
    ) -> Redirect:
        found = parse_id(schedule_id, "schedule_id")
        await services.set_paused(conn, session.principal.tenant_id, found, paused=False)
        return go(f"{session.base}/schedules/{found}?notice=resumed")

    @post("/{schedule_id:str}/run", name="schedule_run")
    async def run_schedule(
        self, session: Session, form: CheckedForm, conn: Transaction, schedule_id: IdPath
    ) -> Redirect:
        found = parse_id(schedule_id, "schedule_id")
        await services.run_now(conn, session.principal.tenant_id, found)
        return go(f"{session.base}/schedules/{found}?notice=ran")
