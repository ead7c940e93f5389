"""pytest plugin (entry point ``pytest11``): a ``local_forge`` fixture for tests that need a GitHub.

::

    def test_opens_a_pull_request(local_forge):
        local_forge.create_repo("acme/teams", seed_from=seed)
        gh = Github(base_url=local_forge.base_url, auth=Auth.Token(local_forge.token))
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from .forge import LocalForge


@pytest.fixture
def local_forge(tmp_path: Path) -> Iterator[LocalForge]:
    """A started :class:`LocalForge` on a free loopback port, with a fresh token, closed afterwards."""
    forge = LocalForge(tmp_path / "local-forge", token="lf_" + secrets.token_urlsafe(16))
    forge.start()
    try:
        yield forge
    finally:
        forge.close()
