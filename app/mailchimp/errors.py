"""Errors of Kave's calls to the Mailchimp Marketing API."""

from __future__ import annotations

from app.core.errors import AppError, BadRequest, UpstreamError


class MailchimpError(UpstreamError):
    """Mailchimp answered with an error; its title and detail are passed on."""

    code = "mailchimp_error"
    message = "Mailchimp answered with an error."


class MailchimpUnreachable(MailchimpError):
    code = "mailchimp_unreachable"
    message = "Mailchimp could not be reached; retry later."


class MailchimpNotConfigured(AppError):
    # 503 without Retry-After: retrying cannot help until an operator sets the configuration.
    status_code = 503
    code = "mailchimp_not_configured"
    message = (
        "Mailchimp is not configured: set MAILCHIMP_API_KEY and MAILCHIMP_SERVER_PREFIX "
        "(and MAILCHIMP_AUDIENCE_WEBHOOK_TOKEN to register a webhook)."
    )


class InvalidPublicUrl(BadRequest):
    code = "invalid_public_url"
    message = "The public URL must be an http(s) base URL such as https://kave.example.com."


class InvalidMailchimpId(BadRequest):
    code = "invalid_mailchimp_id"
    message = "A Mailchimp list or webhook id is letters, digits, '-' and '_' only."
