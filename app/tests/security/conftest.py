"""Users and bearer tokens for the security tests: the management tests' own fixtures."""

from __future__ import annotations
