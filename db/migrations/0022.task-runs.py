"""The task registry's record: every run of a periodic maintenance task (by its schedule or by
hand), and per task the totals an operator alerts on."""

from yoyo import step

__depends__ = {"0021.schedules"}

APPLY = """
SET LOCAL lock_timeout = '5s';
CREATE TABLE task_runs (
    id uuid PRIMARY KEY,
    task text NOT NULL,
    job_id bigint,
    trigger text NOT NULL CHECK (trigger IN ('schedule', 'manual')),
    outcome text NOT NULL DEFAULT 'running'
        CHECK (outcome IN ('running', 'succeeded', 'failed')),
    result jsonb,
    error text,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    duration_ms integer
);
COMMENT ON TABLE task_runs IS
    'One row per run of a maintenance task (core/tasks.py): its procrastinate job, whether its '
    'schedule or an operator started it, the outcome and result or error, and how long it took. '
    'A run still `running` whose job is no longer doing died with its worker.';
CREATE INDEX task_runs_task_idx ON task_runs (task, id);

CREATE TABLE task_totals (
    task text PRIMARY KEY,
    runs_total bigint NOT NULL DEFAULT 0,
    failures_total bigint NOT NULL DEFAULT 0,
    last_success_at timestamptz,
    last_failure_at timestamptz
);
COMMENT ON TABLE task_totals IS
    'Per maintenance task: runs and failures since the database was created (counters that '
    'never go back, unlike the task_runs history, which is purged), and the last success.';
"""

ROLLBACK = """
DROP TABLE task_totals;
DROP TABLE task_runs;
"""

steps = [step(APPLY, ROLLBACK)]
