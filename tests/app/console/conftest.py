"""The console's client sees redirects as the browser gets them (303 + Location)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient


@pytest.fixture
async def client(client: AsyncTestClient) -> AsyncIterator[AsyncTestClient]:
    """The app's in-process client, not following redirects."""
    client.follow_redirects = False
    return client
