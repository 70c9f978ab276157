"""procrastinate's job tables, applied from the schema file of the installed version."""

from importlib import resources

from yoyo import step

__depends__ = {"0002.events"}

# Everything procrastinate's schema creates is named procrastinate_*; drop it by catalog
# so a rollback follows whatever the installed version created.
DROP_PROCRASTINATE = r"""
DO $$
DECLARE
    obj record;
BEGIN
    FOR obj IN SELECT c.oid::regclass AS name FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relkind IN ('r', 'p') AND c.relname LIKE 'procrastinate\_%'
                 AND n.nspname = current_schema() LOOP
        EXECUTE format('DROP TABLE IF EXISTS %s CASCADE', obj.name);
    END LOOP;
    FOR obj IN SELECT p.oid::regprocedure AS name FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               WHERE p.proname LIKE 'procrastinate\_%' AND n.nspname = current_schema() LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', obj.name);
    END LOOP;
    FOR obj IN SELECT t.oid::regtype AS name FROM pg_type t
               JOIN pg_namespace n ON n.oid = t.typnamespace
               WHERE t.typname LIKE 'procrastinate\_%' AND t.typtype IN ('e', 'c')
                 AND n.nspname = current_schema() LOOP
        EXECUTE format('DROP TYPE IF EXISTS %s CASCADE', obj.name);
    END LOOP;
END
$$;
"""


def apply_schema(conn) -> None:
    """Run procrastinate's schema.sql as one statement batch (it holds $$ bodies and % signs)."""
    schema = resources.files("procrastinate.sql").joinpath("schema.sql").read_text()
    conn.cursor().execute(schema)


def drop_schema(conn) -> None:
    """Drop every procrastinate_* table, function and type."""
    conn.cursor().execute(DROP_PROCRASTINATE)


steps = [step(apply_schema, drop_schema)]
