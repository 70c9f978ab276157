"""Routes under /v1/keys."""

from __future__ import annotations

from litestar import delete, get, patch, post
from litestar.params import JSONBody

from app.api import WITHOUT_IDEMPOTENCY, ApiController
from app.dependencies import Caller, Pool, Transaction, Verifier
from app.identifiers import IdPath, parse_id
from app.keys import services
from app.keys.schemas import (
    CreatedKey,
    CreateKeyRequest,
    KeyList,
    KeyPatch,
    KeyView,
    RotateKeyRequest,
)
from app.media import check_json_body
from app.openapi import error_responses
from app.pagination import Cursor, Limit
from app.scopes import KEYS_MANAGE


class KeyController(ApiController):
    """Create, list, rotate and revoke the API keys of the caller's tenant.

    No Idempotency-Key here: a replay would need the full key, which is never stored."""

    path = "/v1/keys"
    tags = ["keys"]  # noqa: RUF012 - Litestar reads class attributes
    middleware = WITHOUT_IDEMPOTENCY
    before_request = check_json_body
    opt = {"scope": KEYS_MANAGE}  # noqa: RUF012
    responses = error_responses(400, 401, 403, 404, 409)

    @post(
        "/",
        summary="Create an API key (the full key is returned once)",
        responses=error_responses(400, 401, 403, 415),
    )
    async def create_key(
        self, data: JSONBody[CreateKeyRequest], pool: Pool, caller: Caller
    ) -> CreatedKey:
        # The pool, not a transaction: the new key is hashed before a connection is taken.
        return await services.create(pool, caller, data)

    @get("/", summary="List API keys", responses=error_responses(400, 401, 403))
    async def list_keys(
        self, conn: Transaction, caller: Caller, limit: Limit = 50, cursor: Cursor = None
    ) -> KeyList:
        return await services.list_page(conn, caller, cursor, limit)

    @get("/{key_id:str}", summary="Get an API key", responses=error_responses(400, 401, 403, 404))
    async def get_key(self, key_id: IdPath, conn: Transaction, caller: Caller) -> KeyView:
        return await services.get(conn, caller, parse_id(key_id, "key_id"))

    @patch(
        "/{key_id:str}",
        summary="Rename a key or move it to a tier no more generous than its own",
        responses=error_responses(400, 401, 403, 404, 415),
    )
    async def update_key(
        self,
        key_id: IdPath,
        data: JSONBody[KeyPatch],
        conn: Transaction,
        caller: Caller,
        key_verifier: Verifier,
    ) -> KeyView:
        key_uuid = parse_id(key_id, "key_id")
        return await services.update(conn, key_verifier, caller, key_uuid, data)

    @post(
        "/{key_id:str}/rotate",
        summary="Rotate an API key (the old one works for grace_period_seconds)",
        status_code=201,
        responses=error_responses(400, 401, 403, 404, 409, 415),
    )
    async def rotate_key(
        self,
        key_id: IdPath,
        pool: Pool,
        caller: Caller,
        key_verifier: Verifier,
        data: JSONBody[RotateKeyRequest | None] = None,
    ) -> CreatedKey:
        grace = data.grace_period_seconds if data else 0
        key_uuid = parse_id(key_id, "key_id")
        return await services.rotate(pool, key_verifier, caller, key_uuid, grace)

    @delete(
        "/{key_id:str}",
        summary="Revoke an API key",
        status_code=200,
        responses=error_responses(400, 401, 403, 404),
    )
    async def revoke_key(
        self, key_id: IdPath, conn: Transaction, caller: Caller, key_verifier: Verifier
    ) -> KeyView:
        return await services.revoke(conn, key_verifier, caller, parse_id(key_id, "key_id"))
