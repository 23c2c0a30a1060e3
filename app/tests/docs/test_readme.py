"""The README's configuration table names every setting Kave reads."""

from __future__ import annotations

import re
from pathlib import Path

from app.core.config import Settings

README = Path(__file__).resolve().parents[3] / "README.md"


def test_every_setting_is_in_the_configuration_table() -> None:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    first_cells = [row.split("|")[1] for row in rows]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z0-9_]+)`", cell)}
    settings = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
    assert settings - documented == set()
    assert documented - settings == set()
