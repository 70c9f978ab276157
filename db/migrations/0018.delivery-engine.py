"""Deliveries are claimed by each worker's delivery engine, woken by NOTIFY: the `deliver` and
`wake_due_deliveries` jobs no longer exist, so forget any still waiting."""

from yoyo import step

__depends__ = {"0017.ed25519-signatures"}

steps = [
    step(
        "DELETE FROM procrastinate_jobs"
        " WHERE task_name IN ('deliver', 'wake_due_deliveries') AND status = 'todo'"
    )
]
