"""Secrets at rest: endpoint signing secrets and source verification secrets become AES-256-GCM
ciphertext (core/encryption.py) in `*_encrypted` bytea columns, and the plaintext columns go.

A database that already holds secrets needs the operator's key to seal them: run
`eventgate migrate apply` with EVENTGATE_ENCRYPTION_KEYS (or _FILE) set. Without one, this
migration stops with one line naming the setting and changes nothing. Rolling back opens them
again with the same keys.
"""

from psycopg import sql
from yoyo import step

from core.encryption import Keyring, Where
from core.settings import Settings

__depends__ = {"0014.console"}

# (table, plaintext column); each gets `<column>_encrypted`.
SECRET_COLUMNS = (("endpoints", "secret"), ("endpoints", "previous_secret"), ("sources", "secret"))
BATCH = 1000

COMMENTS = """
COMMENT ON COLUMN endpoints.secret_encrypted IS
    'The whsec_ signing secret, AES-256-GCM under EVENTGATE_ENCRYPTION_KEYS (bound to this row '
    'and column; the key id is in bytes 2-9).';
COMMENT ON COLUMN endpoints.previous_secret_encrypted IS
    'The secret before the last rotation, sealed like secret_encrypted; it also signs until '
    'previous_secret_expires_at.';
COMMENT ON COLUMN sources.secret_encrypted IS
    'The verification secret of the source''s scheme, sealed like endpoints.secret_encrypted.';
"""


def _keyring_if_needed(keyring: list[Keyring]) -> Keyring:
    # Read only when there is something to convert: an empty database needs no key.
    if not keyring:
        keyring.append(Keyring.from_settings(Settings.from_env()))
    return keyring[0]


def _convert(conn, source: str, target: str, transform) -> None:
    """Fill `target` from `source` for every row holding a value, in batches."""
    keyring: list[Keyring] = []
    for table, column in SECRET_COLUMNS:
        names = {"table": sql.Identifier(table), "column": sql.Identifier(column)}
        src = sql.Identifier(column + source)
        dst = sql.Identifier(column + target)
        select = sql.SQL(
            "SELECT id, {src} FROM {table} WHERE {src} IS NOT NULL AND id > %s ORDER BY id LIMIT %s"
        ).format(src=src, **names)
        update = sql.SQL("UPDATE {table} SET {dst} = %s WHERE id = %s").format(dst=dst, **names)
        after = "00000000-0000-0000-0000-000000000000"
        cur = conn.cursor()
        while rows := cur.execute(select, (after, BATCH)).fetchall():
            ring = _keyring_if_needed(keyring)
            where = [Where(table, column, row_id) for row_id, _ in rows]
            values = [transform(ring, value, w) for (_, value), w in zip(rows, where, strict=True)]
            cur.executemany(update, [(v, w.row_id) for v, w in zip(values, where, strict=True)])
            after = rows[-1][0]


def seal(conn) -> None:
    """Add the ciphertext columns, seal every stored secret, drop the plaintext."""
    cur = conn.cursor()
    cur.execute("SET LOCAL lock_timeout = '5s'")
    for table, column in SECRET_COLUMNS:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} bytea").format(
                sql.Identifier(table), sql.Identifier(column + "_encrypted")
            )
        )
    _convert(conn, "", "_encrypted", lambda ring, value, where: ring.seal(value, where))
    for table, column in SECRET_COLUMNS:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                sql.Identifier(table), sql.Identifier(column)
            )
        )
    cur.execute("ALTER TABLE endpoints ALTER COLUMN secret_encrypted SET NOT NULL")
    cur.execute(COMMENTS)


def unseal(conn) -> None:
    """Bring the plaintext columns back from the ciphertext (the same keys are needed)."""
    cur = conn.cursor()
    for table, column in SECRET_COLUMNS:
        cur.execute(
            sql.SQL("ALTER TABLE {} ADD COLUMN {} text").format(
                sql.Identifier(table), sql.Identifier(column)
            )
        )
    _convert(conn, "_encrypted", "", lambda ring, value, where: ring.open(bytes(value), where))
    for table, column in SECRET_COLUMNS:
        cur.execute(
            sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(
                sql.Identifier(table), sql.Identifier(column + "_encrypted")
            )
        )
    cur.execute("ALTER TABLE endpoints ALTER COLUMN secret SET NOT NULL")


steps = [step(seal, unseal)]
