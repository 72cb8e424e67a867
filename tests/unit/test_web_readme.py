"""The README's route table is the one generated from ``ROUTES`` (as the OpenAPI document
is), so a route added, renamed or re-described shows there too."""

from __future__ import annotations

from pathlib import Path

from callcenter.web.api import ROUTES
from callcenter.web.openapi import route_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_route_table_is_the_generated_one() -> None:
    text = README.read_text()
    begin, end = "<!-- routes:begin -->\n", "<!-- routes:end -->"
    shown = text[text.index(begin) + len(begin):text.index(end)]
    assert shown == route_table(ROUTES), (
        "README.md's route table is stale: replace the lines between the routes markers "
        "with the output of: python -c \"from callcenter.web.api import ROUTES; from "
        "callcenter.web.openapi import route_table; print(route_table(ROUTES), end='')\"")
    for route in ROUTES:
        assert f"| {route.method} | `{route.path}" in shown
