"""The README is a short front door whose links lead somewhere; the configuration table in
docs/configuration.md names every setting Kave reads."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
CONFIGURATION = ROOT / "docs" / "configuration.md"
# Written in other branches of the same round; the lead drops this set when they are merged.
DOCS_FROM_OTHER_BRANCHES = {
    "docs/agent-fields.md",
    "docs/outlet.md",
    "docs/console.md",
    "docs/production.md",
}


def test_every_setting_is_in_the_configuration_table() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    first_cells = [row.split("|")[1] for row in rows]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z0-9_]+)`", cell)}
    settings = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
    assert settings - documented == set()
    assert documented - settings == set()


def test_the_readme_is_a_short_front_door_with_working_links() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.encode()) < 15 * 1024
    for heading in ("## Two commands", "## A five-minute tour", "## Production in a paragraph"):
        assert heading in text
    links = set(re.findall(r"\]\(([^)#]+)\)", text)) - {
        link for link in re.findall(r"\]\(([^)]+)\)", text) if "://" in link
    }
    assert "docs/configuration.md" in links
    missing = {link for link in links if not (ROOT / link).exists()}
    assert missing <= DOCS_FROM_OTHER_BRANCHES
