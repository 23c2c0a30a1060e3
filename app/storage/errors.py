"""Errors of the blob stores."""

from __future__ import annotations

from app.core.errors import ServiceUnavailable


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    message = "The blob storage is unavailable; retry later."
