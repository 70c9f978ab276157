"""Pages under /console/events: search, and one event with its payload, metadata and
deliveries."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.response import Redirect, Template

from app.console.base import QueryText, Session
from app.console.event_search import EventSearch, search
from app.console.forms import optional
from app.console.rendering import go, render
from app.deliveries import services as deliveries
from app.dependencies import Transaction
from app.events import services
from app.identifiers import IdPath, parse_id
from app.pagination import Cursor
from app.scopes import EVENTS_READ


async def asked_search(
    source: QueryText = "",
    event_type: QueryText = "",
    channel: QueryText = "",
    since: QueryText = "",
    until: QueryText = "",
    path: QueryText = "",
    value: QueryText = "",
) -> EventSearch:
    """What the search form asks, from the query string."""
    return EventSearch(source, event_type, channel, since, until, path, value)


class EventPages(Controller):
    """The tenant's events."""

    path = "/events"
    opt = {"scope": EVENTS_READ}  # noqa: RUF012

    @get("/", name="events", dependencies={"asked": Provide(asked_search)})
    async def search_events(
        self,
        session: Session,
        conn: Transaction,
        asked: NamedDependency[EventSearch],
        event_id: QueryText = "",
        cursor: Cursor = None,
    ) -> Template | Redirect:
        if wanted := optional(event_id):
            return go(f"{session.base}/events/{parse_id(wanted, 'event_id')}")
        page = await search(conn, session.principal.tenant_id, asked, cursor)
        outcomes = await deliveries.outcomes(conn, session.principal.tenant_id, page.events)
        return render(
            session, "events.html", active="/events", page=page, asked=asked, outcomes=outcomes
        )

    @get("/{event_id:str}", name="event")
    async def show_event(self, session: Session, conn: Transaction, event_id: IdPath) -> Template:
        tenant_id, event_uuid = session.principal.tenant_id, parse_id(event_id, "event_id")
        event = await services.get(conn, tenant_id, event_uuid)
        listed = (await services.event_deliveries(conn, tenant_id, event_uuid)).deliveries
        outcome = (await deliveries.outcomes(conn, tenant_id, [event])).get(event.id)
        return render(
            session, "event.html", active="/events", event=event, deliveries=listed, outcome=outcome
        )
