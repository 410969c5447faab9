"""The README and docs/ stay in step with the code: generated references, links, first screen, stale facts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vscan.cli.config_docs import config_reference, field_descriptions
from vscan.cli.schema_docs import records_reference, schema_fields, _description
from vscan.config import ScanConfig
from vscan.verdict.record import result_schema

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_configuration_page_is_what_the_code_generates():
    assert (DOCS / "configuration.md").read_text() == config_reference(), (
        "docs/configuration.md is out of date: run `vscan config docs > docs/configuration.md`"
    )


def test_every_config_key_is_documented_with_a_meaning():
    page = (DOCS / "configuration.md").read_text()
    described = field_descriptions()
    for section, values in ScanConfig().to_dict().items():
        part = page.split(f"## [{section}]", 1)[1].split("\n## ", 1)[0]
        for key in values:
            assert f"| `{key}` |" in part, f"[{section}] {key} is missing from docs/configuration.md"
            assert described[f"{section}.{key}"], f"[{section}] {key} has no description (vscan.cli.config_docs.DESCRIPTIONS)"


def test_records_page_is_what_the_schema_generates():
    assert (DOCS / "records.md").read_text() == records_reference(), (
        "docs/records.md is out of date: run `python3 -m vscan.cli.schema_docs > docs/records.md`"
    )


def test_every_record_field_is_in_the_schema_and_described():
    props = result_schema()["properties"]
    # Fields every scan writes that the schema once left out.
    for name in ("versions", "ran_on", "skipped", "previous_scan", "sha1", "second_pass"):
        assert name in props, name
    page = (DOCS / "records.md").read_text()
    paths = [path for path, _ in schema_fields()]
    assert len(paths) > 60  # nested fields (matches[].query_pct, ...) are walked too
    for path, node in schema_fields():
        assert _description(path, node), f"record field {path} has no description"
        assert f"| `{path}`" in page, path


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", page.read_text(), re.M)}


def test_links_between_readme_and_docs_resolve():
    for page in _pages():
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            file_part, _, anchor = target.partition("#")
            dest = (page.parent / file_part).resolve() if file_part else page
            assert dest.exists(), f"{page.name}: link to missing {target}"
            if anchor and dest.suffix == ".md":
                assert anchor in _anchors(dest), f"{page.name}: link to missing heading {target}"


def test_readme_links_every_docs_page():
    readme = README.read_text()
    for page in sorted(DOCS.glob("*.md")):
        assert f"docs/{page.name}" in readme, f"README does not link docs/{page.name}"


def _first_screen() -> str:
    return "\n".join(README.read_text().splitlines()[:45])


def test_first_screen_has_install_demo_tests_and_where_next():
    screen = _first_screen()
    assert "python3 -m venv .venv" in screen and ". .venv/bin/activate" in screen  # PEP 668: no system-wide pip
    assert "vscan demo" in screen
    assert "Where to go next" in screen
    assert "## Contents" in README.read_text()[:4000]


def test_readme_test_command_is_what_ci_runs():
    """The README's second command installs the extras .ci/run installs and runs .ci/run's pytest line."""
    ci = (ROOT / ".ci" / "run").read_text()
    ci_install = re.search(r"pip install -q (-e '\.\[[^\]]+\]')", ci).group(1)
    ci_pytest = re.search(r"^(python3 -m pytest.*)$", ci, re.M).group(1).strip()
    screen = _first_screen()
    assert f"pip install {ci_install}" in screen
    assert ci_pytest in screen


STALE = [
    ("match_mode=", "ScanConfig has no match_mode: ScanConfig(matching=Matching(mode=...))"),
    ("neither `--bank` nor `--model`", "a scan also runs with --triage alone"),
    ("2,000 queries/s", "the old index's lookup rate"),
    ("it travels\n  through Ray's object store", "banks are mapped from their path on each node"),
]


@pytest.mark.parametrize("text,why", STALE)
def test_no_stale_fact(text, why):
    for page in _pages():
        assert text not in page.read_text(), f"{page.name}: {why}"


def test_readme_python_block_runs_against_the_api():
    """The README's Python example only uses names vscan exports and ScanSummary fields that exist."""
    import vscan

    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    for name in re.findall(r"vscan\.(\w+)", code):
        assert name in vscan.__all__, name
    fields = set(vars(vscan.ScanSummary())) | {p for p in dir(vscan.ScanSummary) if not p.startswith("_")}
    for name in re.findall(r"summary\.(\w+)", code):
        assert name in fields, name
