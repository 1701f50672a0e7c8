"""The static HTML report: self-contained, escaped, and rendered by a real headless browser."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest
import sqlalchemy as sa
from explore_data import RUN_ID, write_farm_run

from sentra_graph.report import write_report
from sentra_graph.store import schema as t

ARTIFACT = Path(__file__).resolve().parents[1] / "bench" / "out" / "report.png"


class _Page(HTMLParser):
    """Collects images, links, scripts and the rows of the farms table."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict] = []
        self.external: list[str] = []
        self.scripts = 0
        self.farm_rows: list[list[str]] = []
        self._in_farms = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attr = dict(attrs)
        if tag == "img":
            self.images.append(attr)
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            value = attr.get(key) or ""
            if re.match(r"(https?:)?//", value):
                self.external.append(value)
        if tag == "link" and attr.get("rel") == "stylesheet":
            self.external.append(attr.get("href") or "")
        if tag == "div" and attr.get("id") == "farms-table":
            self._in_farms = 1
        elif tag == "div" and self._in_farms:
            self._in_farms += 1
        if self._in_farms and tag == "tr":
            self._row = []
        if self._row is not None and tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "div" and self._in_farms:
            self._in_farms -= 1
        if tag == "td" and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr" and self._row is not None:
            if self._row:
                self.farm_rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


def _check_page(page: _Page) -> None:
    assert [row[0] for row in page.farm_rows] == ["F1", "F2"]
    assert page.farm_rows[0][3] == "block"
    drawings = [img for img in page.images if "drawing" in (img.get("alt") or "")]
    assert drawings, "no farm drawing in the report"
    for img in page.images:
        src = img.get("src") or ""
        assert src.startswith("data:image/png;base64,") and len(src) > 2_000
    assert page.external == [] and page.scripts == 0


def test_report_is_self_contained_and_lists_the_farms(store, tmp_path):
    write_farm_run(store)
    path = write_report(store, tmp_path / "report", top_n=1)
    assert path == tmp_path / "report" / "index.html"
    text = path.read_text("utf-8")
    page = _parse(text)
    _check_page(page)
    # top_n=1: one farm in detail (drawing, timeline, template mix) + two run charts
    assert len(page.images) == 5
    for needle in (RUN_ID, "Stage timings", "graph", "Example prompts", "farm1-00"):
        assert needle in text
    assert 'href="#farm-F1"' in text and 'href="#farm-F2"' not in text
    assert list(path.parent.iterdir()) == [path]  # no temp file left behind


def test_report_escapes_what_the_data_says(store, tmp_path):
    write_farm_run(store)
    with store.begin() as conn:
        conn.execute(
            sa.update(t.clusters)
            .where(t.clusters.c.cluster_id == "F1")
            .values(reasons=["<script>alert(1)</script> & more"])
        )
    text = write_report(store, tmp_path, top_n=2).read_text("utf-8")
    assert "<script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text


def test_report_of_a_run_without_farms(store, tmp_path):
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    store.start_run("empty", start, start + dt.timedelta(days=1), {})
    empty = pd.DataFrame(columns=["cluster_id", "size", "score", "decision", "reasons", "evidence"])
    store.write_results(
        "empty",
        empty,
        pd.DataFrame(columns=["account_id", "cluster_id", "strength"]),
        pd.DataFrame(
            columns=["account_id", "score", "decision", "cluster_id", "reasons", "evidence"]
        ),
    )
    store.publish_run("empty", {}, {}, dt.timedelta(days=1))
    text = write_report(store, tmp_path).read_text("utf-8")
    assert "this run found no farm" in text and "no timings recorded" in text


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_report_renders_in_headless_chromium(sqlite_store, tmp_path):
    store = sqlite_store
    browser = _chromium()
    if browser is None:
        reason = "chromium is not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("SENTRA_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"SENTRA_REQUIRE_CHROMIUM=1 but {reason}")
        pytest.skip(reason)
    write_farm_run(store)
    index = write_report(store, tmp_path / "report", top_n=2)
    screenshot = tmp_path / "report.png"
    common = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    url = index.resolve().as_uri()
    subprocess.run(
        [*common, f"--screenshot={screenshot}", "--window-size=1400,2000", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120
    ).stdout
    _check_page(_parse(dom))

    pixels = matplotlib.image.imread(screenshot)
    assert pixels.shape[:2] == (2000, 1400)
    assert pixels[..., :3].std() > 0.05, "the screenshot is blank"
    print(f"report screenshot: {screenshot}")
    if os.environ.get("SENTRA_ARTIFACTS"):
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, ARTIFACT)
        print(f"copied to {ARTIFACT}")
