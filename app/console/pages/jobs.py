"""Pages under /console/jobs (admin keys): the maintenance tasks, each one's runs, and a run
by hand."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, get, post
from litestar.params import Parameter
from litestar.response import Redirect, Template

from app.console.base import CheckedForm, Session
from app.console.rendering import go, render
from app.dependencies import Pool, Transaction
from app.jobs import services
from app.scopes import ADMIN

TaskName = Annotated[str, Parameter(max_length=64)]  # unknown names: 404


class JobPages(Controller):
    """The task registry, for operators."""

    path = "/jobs"
    opt = {"scope": ADMIN}  # noqa: RUF012

    @get("/", name="jobs")
    async def list_jobs(self, session: Session, conn: Transaction) -> Template:
        jobs = await services.overview(conn)
        return render(session, "jobs.html", active="/jobs", jobs=jobs)

    @get("/{name:str}", name="job")
    async def show_job(self, session: Session, conn: Transaction, name: TaskName) -> Template:
        runs = await services.history(conn, name)
        spec = services.spec_of(name)
        return render(session, "job.html", active="/jobs", spec=spec, runs=runs)

    @post("/{name:str}/run", name="job_run")
    async def run_job(
        self, session: Session, form: CheckedForm, pool: Pool, name: TaskName
    ) -> Redirect:
        await services.run_now(pool, session.principal.tenant_id, name)
        return go(f"{session.base}/jobs/{name}?notice=queued")
