"""Apps as the importer reads them: one header, from the importer's own columns, for every test."""

from __future__ import annotations

from core.importer import OPTIONAL_COLUMNS, REQUIRED_COLUMNS

__all__ = ["HEADER", "apps_csv"]

#: every column `planbot apps import` knows, required ones first
HEADER = ",".join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)


def apps_csv(*rows: str) -> str:
    """A CSV file of apps: the full header, then `rows` (each a line in the header's order)."""
    return "\n".join([HEADER, *rows]) + "\n"
