"""Users and bearer tokens for the security tests: the management tests' own fixtures."""

from __future__ import annotations

from app.tests.management.conftest import (  # noqa: F401 (fixtures, found by name)
    admin_headers,
    make_user,
    token_for,
)
