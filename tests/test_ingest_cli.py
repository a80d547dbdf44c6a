"""``qabot index add URL | FILE.html | FILE.pdf | FILE.md | FILE.txt`` from the command line."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from tests.conftest import SEED_ARTICLE
from tests.ingest_helpers import ARTICLE_HTML, FERRY_HTML, PDF_LINES, PDF_TITLE, NewsSite, make_pdf, news_site

runner = CliRunner()


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    running = news_site()
    yield running
    running.close()


def _config(tmp_path: Path, allow_private_urls: bool) -> tuple[Path, Path]:
    articles = tmp_path / "articles"
    articles.mkdir(exist_ok=True)
    shutil.copy(SEED_ARTICLE, articles / SEED_ARTICLE.name)
    config = tmp_path / f"config-{allow_private_urls}.yaml"
    settings = {
        "articles_dir": str(articles),
        "index_dir": str(tmp_path / "index"),
        "ingest": {"allow_private_urls": allow_private_urls},
    }
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config, articles


def test_index_add_url_html_and_pdf(tmp_path: Path, site: NewsSite):
    config, articles = _config(tmp_path, allow_private_urls=True)
    result = runner.invoke(app, ["index", "add", site.url("/news/bridge"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "added 'tidal-bridge-opens-in-port-kerran-after-six-years-of-delays'" in result.output
    assert "index now has 2 article(s)" in result.output

    again = runner.invoke(app, ["index", "add", site.url("/go/bridge"), "--config", str(config)])
    assert again.exit_code == 0 and "already in the library" in again.output

    page = tmp_path / "saved page.html"
    page.write_bytes(ARTICLE_HTML)
    same = runner.invoke(app, ["index", "add", str(page), "--config", str(config)])
    assert same.exit_code == 0 and "already in the library" in same.output

    ferry = tmp_path / "ferry.html"
    ferry.write_bytes(FERRY_HTML)
    added = runner.invoke(app, ["index", "add", str(ferry), "--config", str(config)])
    assert added.exit_code == 0 and "added 'ferry' (The Kerran Flyer makes its last crossing)" in added.output

    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(make_pdf(PDF_TITLE, PDF_LINES))
    added = runner.invoke(app, ["index", "add", str(pdf), "--config", str(config)])
    assert added.exit_code == 0 and "index now has 4 article(s)" in added.output
    assert len(list(articles.glob("*.txt"))) == 4

    answered = runner.invoke(app, ["ask", "--json", "Who is the harbour master?", "--config", str(config)])
    assert answered.exit_code == 0 and '"answer": "Edda Lindqvist"' in answered.output


@pytest.mark.parametrize(
    ("allow", "path", "message"),
    [
        (False, "/news/bridge", "not a public internet address"),
        (True, "/login", "login page"),
        (True, "/logo.png", "only HTML pages and PDF files"),
        (True, "/missing", "404"),
    ],
)
def test_index_add_refusals_are_one_error_line(tmp_path: Path, site: NewsSite, allow: bool, path: str, message: str):
    config, articles = _config(tmp_path, allow_private_urls=allow)
    before = sorted(p.name for p in articles.iterdir())
    result = runner.invoke(app, ["index", "add", site.url(path), "--config", str(config)])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert sorted(p.name for p in articles.iterdir()) == before
    assert not (tmp_path / "index").exists()
