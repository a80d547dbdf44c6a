"""Article loading and boilerplate cleaning on the real seed article and on bad files."""

from pathlib import Path

import pytest

from bot.articles import ArticleInfo, clean_body, is_boilerplate, load_article, load_articles, parse_article, url_of
from bot.errors import ArticleError
from tests.conftest import BOILERPLATE_MARKERS, SEED_ARTICLE


def test_seed_article_metadata_and_body():
    article = load_article(SEED_ARTICLE)
    assert article.info.article_id == "aleppo-siege-2016"
    assert article.info.title.startswith("Syria's opposition is on the verge")
    assert article.info.source == "Business Insider"
    assert article.text.startswith("A nearly month-long government siege")
    assert article.text.endswith("But at least now they won’t be starving.”")


def test_seed_article_boilerplate_removed():
    text = load_article(SEED_ARTICLE).text
    for marker in BOILERPLATE_MARKERS:
        assert marker not in text
    assert "It is backed by Turkey, Saudi Arabia, and Qatar." in text


@pytest.mark.parametrize(
    "line",
    [
        "NOW WATCH: The F-35 has hit another snag — this time because it’s too stealthy",
        "Business Insider Emails & Alerts",
        "Site highlights each day to your inbox.",
        "Follow Business Insider Australia on Facebook, Twitter, LinkedIn, and Instagram.",
        "SEE ALSO: Something else entirely",
    ],
)
def test_boilerplate_lines_recognised(line):
    assert is_boilerplate(line)


@pytest.mark.parametrize(
    "line",
    [
        "Follow the money, he said.",
        "“They will continue to be bombed,” Alabdallah said.",
        "Now, the siege is over.",
    ],
)
def test_article_prose_is_not_boilerplate(line):
    assert not is_boilerplate(line)


def test_plain_file_uses_first_line_as_title():
    article = parse_article("My title\n\nFirst paragraph.\n\n\nSecond   paragraph.\n", "x")
    assert article.info.title == "My title"
    assert article.text == "First paragraph.\n\nSecond paragraph."


def test_clean_body_keeps_paragraphs_and_drops_furniture():
    assert clean_body("One.\nNOW WATCH: video\n\nTwo.") == "One.\n\nTwo."


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no title or no text"),
        (b"Title only\n", "no title or no text"),
        (b"\x00\x01binary", "looks binary"),
        (b"caf\xe9 latin-1", "not UTF-8"),
        (b"---\ntitle: x\nno closing marker", "never closed"),
    ],
)
def test_bad_article_files_are_refused(tmp_path: Path, content: bytes, message: str):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ArticleError, match=message):
        load_article(path)


def test_missing_article_and_empty_folder(tmp_path: Path):
    with pytest.raises(ArticleError, match="cannot read"):
        load_article(tmp_path / "missing.txt")
    with pytest.raises(ArticleError, match=r"no \*\.txt articles"):
        load_articles(tmp_path)


@pytest.mark.parametrize("newline", ["\r\n", "\r"], ids=["CRLF", "CR"])
def test_front_matter_with_windows_line_ends(tmp_path: Path, newline: str):
    """Issue 9, item 11: the title was "---" and the front matter was indexed as text."""
    lines = ["---", "title: Rover finds water", "source: NASA", "date: 2026", "---", "The rover found ice.", ""]
    path = tmp_path / "rover.txt"
    path.write_bytes(newline.join(lines).encode())
    article = load_article(path)
    assert (article.info.title, article.info.source, article.info.date) == ("Rover finds water", "NASA", "2026")
    assert article.text == "The rover found ice."


def test_url_of_finds_the_named_article_only():
    """The link under an answer (local index or the workers' /articles): the named article's url, else None."""
    articles = [
        ArticleInfo("bridge", "Bridge reopens"),
        ArticleInfo("aleppo", "Aleppo", url="https://example.org/aleppo"),
        ArticleInfo("harbour", "Harbour", url="https://example.org/harbour"),
    ]
    assert url_of(articles, "harbour") == "https://example.org/harbour"
    assert url_of(articles, "aleppo") == "https://example.org/aleppo"
    assert url_of(articles, "bridge") is None  # indexed, but without a url
    assert url_of(articles, "Harbour") is None  # ids are exact
    assert url_of([], "harbour") is None
