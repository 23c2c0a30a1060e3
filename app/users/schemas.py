"""Request and response bodies of the auth and user routes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from app.core.security import PASSWORD_MIN_LENGTH, Scope
from app.users.models import User
from app.users.service import MAX_EMAIL_CHARS, PASSWORD_MAX_LENGTH, normalize_email

USER_ID_EXAMPLE = "3f0c7a52-8a38-4f54-9a4e-3c1f5f9e2b10"


class TokenOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOi...",
                    "token_type": "bearer",
                    "expires_in": 3600,
                    "scope": "emails:read events:read",
                }
            ]
        }
    )

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type)
    expires_in: int = Field(description="Seconds until the token expires")
    scope: str = Field(description="The granted scopes, space-separated")


class UserOut(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": USER_ID_EXAMPLE,
                    "email": "ops@example.com",
                    "scopes": ["emails:read", "events:read"],
                    "is_active": True,
                    "created_at": "2026-11-21T09:30:00Z",
                }
            ]
        },
    )

    id: uuid.UUID
    email: str
    scopes: list[Scope]
    is_active: bool
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls.model_validate(user)


class CurrentUserOut(UserOut):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": USER_ID_EXAMPLE,
                    "email": "ops@example.com",
                    "scopes": ["emails:read", "events:read"],
                    "is_active": True,
                    "created_at": "2026-11-21T09:30:00Z",
                    "token_scopes": ["emails:read"],
                    "token_expires_at": "2026-11-21T10:30:00Z",
                }
            ]
        },
    )

    token_scopes: list[Scope] = Field(
        description="What this token may do: the scopes both the token and the user still hold"
    )
    token_expires_at: datetime | None = Field(description="Null for an API key without expiry")


class UserList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": USER_ID_EXAMPLE,
                            "email": "ops@example.com",
                            "scopes": ["users:admin"],
                            "is_active": True,
                            "created_at": "2026-11-21T09:30:00Z",
                        }
                    ]
                }
            ]
        }
    )

    items: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "ops@example.com",
                    "password": "correct horse battery staple",
                    "scopes": ["emails:read", "events:read"],
                }
            ]
        }
    )

    email: str = Field(min_length=3, max_length=MAX_EMAIL_CHARS, description="The login name")
    password: SecretStr = Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
    scopes: list[Scope] = Field(description="Scopes the user may request tokens for")

    @field_validator("email")
    @classmethod
    def _normalize_email(cls, value: str) -> str:
        return normalize_email(value)


class UserUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"is_active": False}, {"scopes": ["emails:read"]}],
        },
    )

    scopes: list[Scope] | None = None
    is_active: bool | None = None
    password: SecretStr | None = Field(
        default=None, min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH
    )
