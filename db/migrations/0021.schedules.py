"""Tenant schedules: a cron expression in a time zone that produces an event at each tick, and
the history of its runs, one per schedule and tick (the database keeps it exactly once)."""

from yoyo import step

__depends__ = {"0020.scheduled-delivery"}

APPLY = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE schedules (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name text NOT NULL,
    cron text NOT NULL,
    timezone text NOT NULL,
    event_type text NOT NULL,
    source text NOT NULL,
    payload jsonb NOT NULL,
    channels text[] NOT NULL DEFAULT '{}',
    catch_up boolean NOT NULL DEFAULT true,
    paused boolean NOT NULL DEFAULT false,
    next_run_at timestamptz NOT NULL,
    last_run_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schedules IS
    'Recurring events of a tenant: at each tick of cron (in timezone) an event of event_type '
    'with payload and channels is ingested. next_run_at is the next tick in UTC; workers fire '
    'due ones every minute. catch_up: ticks missed while no worker ran fire once on recovery '
    '(true) or are skipped (false).';
CREATE INDEX schedules_due_idx ON schedules (next_run_at) WHERE NOT paused;
CREATE INDEX schedules_tenant_idx ON schedules (tenant_id, id);

CREATE TABLE schedule_runs (
    id uuid PRIMARY KEY,
    tenant_id uuid NOT NULL,
    schedule_id uuid NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    tick timestamptz NOT NULL,
    trigger text NOT NULL CHECK (trigger IN ('cron', 'manual')),
    status text NOT NULL CHECK (status IN ('succeeded', 'failed', 'skipped')),
    event_id uuid,
    error text,
    missed integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE schedule_runs IS
    'One row per run of a schedule: the tick it was for (the request time of a manual run), '
    'the event it produced, or why it failed; missed counts the earlier ticks it stands for '
    '(caught up at once, or skipped). A cron tick has one run at most (schedule_runs_tick_key).';
CREATE UNIQUE INDEX schedule_runs_tick_key ON schedule_runs (schedule_id, tick)
    WHERE trigger = 'cron';
CREATE INDEX schedule_runs_schedule_idx ON schedule_runs (schedule_id, id);
"""

ROLLBACK = """
DROP TABLE schedule_runs;
DROP TABLE schedules;
"""

steps = [step(APPLY, ROLLBACK)]
