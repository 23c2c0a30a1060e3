"""Errors of accounts and tokens."""

from __future__ import annotations

from app.core.errors import Conflict, NotAuthenticated, NotFound


class InvalidCredentials(NotAuthenticated):
    code = "invalid_credentials"
    message = "Incorrect username or password."


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "No user with that id."


class UserExists(Conflict):
    code = "user_exists"
    message = "A user with that email already exists."


class LastAdministrator(Conflict):
    code = "last_administrator"
    message = "The change would leave no active user with the users:admin scope."
