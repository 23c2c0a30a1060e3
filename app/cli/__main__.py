"""`python -m app.cli`: Kave's management commands."""

from __future__ import annotations

import typer

from app.cli import events, export, status, users, worker
from app.cli.agent_fields import recompute_fields
from app.cli.api_keys import api_keys_app
from app.cli.audience import audience_app
from app.cli.destinations import destinations_app
from app.cli.emails import emails_app
from app.cli.send_test import send_test

cli = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Kave management: users, emails, events and replay, checks, retention, export.",
)

cli.command("create-user")(users.create_user)
cli.command("list-users")(users.list_users)
cli.command("disable-user")(users.disable_user)
cli.command("first-run-hint")(users.first_run_hint)
cli.command("replay")(events.replay)
cli.command("recompute-fields")(recompute_fields)
cli.command("stats")(status.stats)
cli.command("check")(status.check)
cli.command("export")(export.export)
cli.command("worker")(worker.worker)
cli.command("send-test")(send_test)

# Command groups, one `add_typer` line each:
cli.add_typer(audience_app, name="audience-webhook")
cli.add_typer(emails_app, name="emails")
cli.add_typer(events.events_app, name="events")
cli.add_typer(destinations_app, name="destinations")
cli.add_typer(api_keys_app, name="api-keys")


if __name__ == "__main__":
    cli()
