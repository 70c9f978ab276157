"""Routes under /v1/schedules: a tenant's recurring events, run by the workers at each tick."""

from __future__ import annotations

from litestar import delete, get, patch, post
from litestar.params import JSONBody

from app.api import ApiController
from app.dependencies import Caller, Transaction
from app.identifiers import IdPath, parse_id
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.schedules import services
from app.schedules.schemas import (
    RunList,
    RunView,
    ScheduleIn,
    ScheduleList,
    SchedulePatch,
    ScheduleView,
)
from app.scopes import SCHEDULES_MANAGE


class ScheduleController(ApiController):
    """Cron schedules that ingest an event at each tick, with their history of runs."""

    path = "/v1/schedules"
    tags = ["schedules"]  # noqa: RUF012 - Litestar reads class attributes
    before_request = check_json_body
    opt = {"scope": SCHEDULES_MANAGE}  # noqa: RUF012

    @post("/", summary="Create a schedule", responses=error_responses(400, 401, 403, 413, 415))
    async def create_schedule(
        self, data: JSONBody[ScheduleIn], conn: Transaction, caller: Caller
    ) -> ScheduleView:
        return await services.create(conn, caller.tenant_id, data)

    @get("/", summary="List schedules", responses=error_responses(400, 401, 403))
    async def list_schedules(
        self, conn: Transaction, caller: Caller, limit: Limit = 50, cursor: Cursor = None
    ) -> ScheduleList:
        return await services.list_page(conn, caller.tenant_id, cursor, limit)

    @get(
        "/{schedule_id:str}",
        summary="Get a schedule",
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_schedule(
        self, schedule_id: IdPath, conn: Transaction, caller: Caller
    ) -> ScheduleView:
        return await services.get(conn, caller.tenant_id, parse_id(schedule_id, "schedule_id"))

    @patch(
        "/{schedule_id:str}",
        summary="Change a schedule",
        responses=error_responses(400, 401, 403, 404, 413, 415),
    )
    async def update_schedule(
        self, schedule_id: IdPath, data: JSONBody[SchedulePatch], conn: Transaction, caller: Caller
    ) -> ScheduleView:
        found = parse_id(schedule_id, "schedule_id")
        return await services.update(conn, caller.tenant_id, found, data)

    @delete(
        "/{schedule_id:str}",
        summary="Delete a schedule and its runs",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def delete_schedule(
        self, schedule_id: IdPath, conn: Transaction, caller: Caller
    ) -> ScheduleView:
        return await services.delete(conn, caller.tenant_id, parse_id(schedule_id, "schedule_id"))

    @post(
        "/{schedule_id:str}/pause",
        summary="Pause a schedule (no tick fires until it is resumed)",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def pause_schedule(
        self, schedule_id: IdPath, conn: Transaction, caller: Caller
    ) -> ScheduleView:
        found = parse_id(schedule_id, "schedule_id")
        return await services.set_paused(conn, caller.tenant_id, found, paused=True)

    @post(
        "/{schedule_id:str}/resume",
        summary="Resume a schedule from its next tick",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def resume_schedule(
        self, schedule_id: IdPath, conn: Transaction, caller: Caller
    ) -> ScheduleView:
        found = parse_id(schedule_id, "schedule_id")
        return await services.set_paused(conn, caller.tenant_id, found, paused=False)

    @post(
        "/{schedule_id:str}/run",
        summary="Run a schedule now (its event is ingested at once)",
        status_code=201,
        responses=error_responses(400, 401, 403, 404),
    )
    async def run_schedule(self, schedule_id: IdPath, conn: Transaction, caller: Caller) -> RunView:
        return await services.run_now(conn, caller.tenant_id, parse_id(schedule_id, "schedule_id"))

    @get(
        "/{schedule_id:str}/runs",
        summary="A schedule's runs, newest first",
        responses=error_responses(400, 401, 403, 404),
    )
    async def list_schedule_runs(
        self,
        schedule_id: IdPath,
        conn: Transaction,
        caller: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> RunList:
        found = parse_id(schedule_id, "schedule_id")
        return await services.runs_page(conn, caller.tenant_id, found, cursor, limit)
