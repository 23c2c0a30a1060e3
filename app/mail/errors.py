"""Errors of mail parsing."""

from __future__ import annotations


class UnparseableMessage(ValueError):
    """The inbound event's `msg` describes no message that can be turned into an email."""
