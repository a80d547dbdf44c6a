"""Bring-your-own-article: fetching (SSRF guard, limits), extraction (furniture left out), storing, duplicates.

Pages come from a local server on 127.0.0.1 (``tests/ingest_helpers.py``), never the internet. Settings allow
private addresses only where a test fetches from that server; the SSRF tests keep the guard on.
"""

from __future__ import annotations

import ipaddress
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import IngestSettings, Settings, with_overrides
from bot.errors import IndexBusyError, IngestError
from bot.ingest import Quota, forget, ingest_bytes, ingest_file, ingest_url
from bot.ingest.extract import extract_pdf, reflow
from bot.ingest.fetch import fetch_url, is_public_address
from bot.ingest.library import chat_owner, load_library
from tests.conftest import SEED_ARTICLE
from tests.ingest_helpers import (
    ARTICLE_HTML,
    FURNITURE_MARKERS,
    PDF_LINES,
    PDF_TITLE,
    NewsSite,
    make_pdf,
    news_site,
)

GUARDED = IngestSettings(read_timeout_s=1.0, total_timeout_s=5.0)
OPEN = with_overrides(GUARDED, {"allow_private_urls": True})


@pytest.fixture(scope="module")
def site() -> Iterator[NewsSite]:
    running = news_site()
    yield running
    running.close()


@pytest.fixture
def ingest_settings(project_settings: Settings, tmp_path: Path) -> Settings:
    """The shipped config over a temp articles folder (the seed article) and index, private URLs allowed."""
    articles = tmp_path / "articles"
    articles.mkdir()
    shutil.copy(SEED_ARTICLE, articles / SEED_ARTICLE.name)
    overrides = {"articles_dir": articles, "index_dir": tmp_path / "index", "ingest": OPEN, "ingest.max_bytes": 100_000}
    return with_overrides(project_settings, overrides)


def _files(settings: Settings) -> set[str]:
    return {p.name for p in settings.resolve(settings.articles_dir).iterdir()}


# -- the SSRF guard ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
     "224.0.0.1", "240.0.0.1", "::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
     "2002:7f00:1::", "2002:a9fe:a9fe::1", "2001:0:5db8:d70e::1"],  # 6to4 of 127.0.0.1 and 169.254.169.254; Teredo
)
def test_non_public_addresses_are_refused(address: str):
    assert not is_public_address(ipaddress.ip_address(address))


def test_public_addresses_pass():
    assert is_public_address(ipaddress.ip_address("93.184.215.14"))
    assert is_public_address(ipaddress.ip_address("2606:4700::1111"))
    assert is_public_address(ipaddress.ip_address("2002:5db8:d70e::1"))  # 6to4 of a public IPv4 address


def test_loopback_url_is_refused_without_contacting_it(site: NewsSite):
    with pytest.raises(IngestError, match="not a public internet address"):
        fetch_url(site.url("/news/bridge"), GUARDED)
    assert ("/news/bridge", f"127.0.0.1:{site.port}") not in site.requests


def test_private_network_url_is_refused():
    with pytest.raises(IngestError, match=r"10\.0\.0\.5.*not a public"):
        fetch_url("http://10.0.0.5/admin", GUARDED)


def test_host_name_resolving_to_internal_address_is_refused():
    """The guard judges what a name resolves to, not how the name looks."""

    def resolver(host: str, port: int) -> list[str]:
        return ["93.184.215.14", "169.254.169.254"]  # one bad address is enough to refuse

    with pytest.raises(IngestError, match=r"169\.254\.169\.254"):
        fetch_url("http://metadata.example/latest", GUARDED, resolver=resolver)


def test_redirect_to_loopback_is_refused(site: NewsSite):
    """127.0.0.1 stands in for a public site; its redirect to another loopback server must not be followed."""
    internal = NewsSite(host="127.0.0.2")
    internal.pages["/secret"] = (200, {"Content-Type": "text/html"}, b"<p>internal</p>")
    site.pages["/to-internal"] = (302, {"Location": f"http://127.0.0.2:{internal.port}/secret"}, b"")
    stand_in = ipaddress.ip_address("127.0.0.1")
    try:
        with pytest.raises(IngestError, match=r"127\.0\.0\.2.*not a public"):
            fetch_url(
                site.url("/to-internal"), GUARDED, address_allowed=lambda a: a == stand_in or is_public_address(a)
            )
        assert internal.requests == []
    finally:
        internal.close()


def test_connection_goes_to_the_checked_address(site: NewsSite):
    """DNS rebinding: the name resolves to an allowed address once, to an internal one after. The request must
    go to the address that was checked (and keep the real Host header); a second lookup would fail here."""
    answers = iter([["127.0.0.1"]])

    def rebinding_resolver(host: str, port: int) -> list[str]:
        return next(answers, ["10.0.0.1"])

    document = fetch_url(f"http://news.rebind.test:{site.port}/news/bridge", OPEN, resolver=rebinding_resolver)
    assert document.body == ARTICLE_HTML
    assert ("/news/bridge", f"news.rebind.test:{site.port}") in site.requests


def test_https_request_is_pinned_but_keeps_host_name_for_tls_and_virtual_hosts():
    """For https the certificate is still checked against the real name (SNI), while the socket goes to the IP."""
    import httpx

    from bot.ingest.fetch import _pinned_request

    def resolver(host: str, port: int) -> list[str]:
        return ["2606:4700::1111", "93.184.215.14"]

    with httpx.Client() as client:
        request = _pinned_request(client, "https://News.Example/a?b=1#c", GUARDED, resolver, is_public_address)
    assert request.url.host == "2606:4700::1111" and request.url.port in (None, 443) and request.url.path == "/a"
    assert request.headers["Host"] == "news.example" and request.extensions["sni_hostname"] == "news.example"
    assert request.headers["User-Agent"] == GUARDED.user_agent


def test_only_http_and_https(site: NewsSite):
    for url in ("file:///etc/passwd", "ftp://example.org/a.pdf", "gopher://127.0.0.1/"):
        with pytest.raises(IngestError, match="only http and https"):
            fetch_url(url, OPEN)


# -- limits -------------------------------------------------------------------------------------------------


def test_redirects_are_followed_and_checked(site: NewsSite):
    document = fetch_url(site.url("/go/bridge"), OPEN)
    assert document.final_url.endswith("/news/bridge") and document.body == ARTICLE_HTML


def test_redirect_loop_stops(site: NewsSite):
    with pytest.raises(IngestError, match="more than 5 redirects"):
        fetch_url(site.url("/loop"), OPEN)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/logo.png", "image/png; only HTML pages and PDF"),
        ("/feed.json", "application/json; only HTML"),
        ("/missing", "404"),
        ("/huge", "300,033 bytes; the limit is 100,000"),
        ("/huge-unannounced", "over the 100,000-byte limit"),
        ("/slow", "did not answer in time|stopped sending"),
    ],
)
def test_fetch_limits(site: NewsSite, path: str, message: str):
    with pytest.raises(IngestError, match=message):
        fetch_url(site.url(path), with_overrides(OPEN, {"max_bytes": 100_000}))


def test_total_timeout_holds_against_a_server_that_drips(site: NewsSite):
    """One byte every 0.3 s never trips the read timeout (1 s); the total timeout (1 s) must still stop it."""
    started = time.monotonic()
    with pytest.raises(IngestError, match="took over 1 s to download"):
        fetch_url(site.url("/drip"), with_overrides(OPEN, {"total_timeout_s": 1.0}))
    assert time.monotonic() - started < 5  # the whole page would take over 30 s


def test_total_timeout_counts_every_redirect_hop(site: NewsSite):
    """Five redirects of 0.4 s each: every hop is quick, together they are over the 1 s total."""
    with pytest.raises(IngestError, match="took over 1 s to download"):
        fetch_url(site.url("/slow-hop"), with_overrides(OPEN, {"total_timeout_s": 1.0}))


def test_user_agent_is_sent(site: NewsSite):
    seen: list[str] = []
    original = site.server.RequestHandlerClass.do_GET

    def recording(handler) -> None:  # type: ignore[no-untyped-def]
        seen.append(handler.headers.get("User-Agent", ""))
        original(handler)

    site.server.RequestHandlerClass.do_GET = recording  # type: ignore[method-assign]
    try:
        fetch_url(site.url("/news/bridge"), OPEN)
    finally:
        site.server.RequestHandlerClass.do_GET = original  # type: ignore[method-assign]
    assert seen and seen[0].startswith("qabot/")


# -- not an article: one error, nothing written ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/login", "login page"),
        ("/logo.png", "only HTML pages and PDF"),
        ("/missing", "404"),
        ("/empty", "no article text|not an article"),
        ("/huge", "limit is 100,000"),
    ],
)
def test_not_an_article_writes_nothing(ingest_settings: Settings, site: NewsSite, path: str, message: str):
    before = _files(ingest_settings)
    with pytest.raises(IngestError, match=message):
        ingest_url(ingest_settings, site.url(path))
    assert _files(ingest_settings) == before
    assert not ingest_settings.resolve(ingest_settings.index_dir).exists()


def test_unsupported_and_fake_files_write_nothing(ingest_settings: Settings, tmp_path: Path):
    before = _files(ingest_settings)
    for name, data, message in [
        ("photo.jpg", b"\xff\xd8\xff", "only .txt"),
        ("paper.pdf", b"<html>not a pdf</html>", "not a PDF"),
        ("notes.txt", b"short\n\nfar too short", "not an article"),
        ("big.txt", b"word " * 30_000, "limit is 100,000"),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(IngestError, match=message):
            ingest_file(ingest_settings, path)
    assert _files(ingest_settings) == before


# -- extraction ---------------------------------------------------------------------------------------------


def test_pdf_text_is_reflowed_into_sentences():
    extracted = extract_pdf(make_pdf(PDF_TITLE, PDF_LINES))
    assert extracted.title == PDF_TITLE
    assert "with a draught of more than three metres, and pilot boats will guide" in extracted.text
    assert "Harbour master Edda Lindqvist said" in extracted.text


def test_reflow_joins_hyphenated_words():
    page = "The channel was dred-\nged in 2009 by the city of Port Kerran and then it was left for many years\nalone."
    assert "dredged in 2009" in reflow(page)


# -- whole path: URL, HTML file, PDF, Markdown -> indexed article --------------------------------------------


def test_url_becomes_an_indexed_article_without_furniture(ingest_settings: Settings, site: NewsSite):
    from bot.indexing import load_index

    result = ingest_url(ingest_settings, site.url("/news/bridge"))
    assert result.added and result.articles == 2
    assert result.info.title == "Tidal bridge opens in Port Kerran after six years of delays"
    text = (ingest_settings.resolve(ingest_settings.articles_dir) / f"{result.info.article_id}.txt").read_text()
    assert text.startswith("---\ntitle: Tidal bridge opens in Port Kerran after six years of delays\n")
    assert "source: The Harbour Gazette\n" in text and "date: 2026-03-17\n" in text
    assert f"url: {site.url('/news/bridge')}\n" in text
    assert "Mayor Ines Calloway cut the ribbon" in text
    chunks = " ".join(doc.content or "" for doc in load_index(ingest_settings).store.filter_documents())
    assert "Vandermeer and Holt" in chunks
    for marker in FURNITURE_MARKERS:
        assert marker not in text and marker not in chunks, marker


def test_same_url_or_same_text_is_not_added_twice(ingest_settings: Settings, site: NewsSite, tmp_path: Path):
    first = ingest_url(ingest_settings, site.url("/news/bridge"))
    files = _files(ingest_settings)
    fetched = len(site.requests)
    again = ingest_url(ingest_settings, site.url("/news/bridge#comments"))
    assert not again.added and again.info.article_id == first.info.article_id
    assert len(site.requests) == fetched  # a known URL is recognised before anything is downloaded
    copy = ingest_url(ingest_settings, site.url("/news/bridge-copy"))  # another URL, identical text
    assert not copy.added and copy.info.article_id == first.info.article_id
    saved = tmp_path / "bridge.html"
    saved.write_bytes(ARTICLE_HTML)
    assert not ingest_file(ingest_settings, saved).added
    seed = tmp_path / "my-copy.txt"
    seed.write_bytes(SEED_ARTICLE.read_bytes())
    assert ingest_file(ingest_settings, seed).info.article_id == "aleppo-siege-2016"
    assert _files(ingest_settings) == files


def test_duplicate_check_reads_an_article_file_edited_since_the_last_check(ingest_settings: Settings, site: NewsSite):
    """The duplicate check remembers what it read of each file; a file edited since must be read again."""
    first = ingest_url(ingest_settings, site.url("/news/bridge"))
    assert not ingest_url(ingest_settings, site.url("/news/bridge")).added  # the check has now read the file
    path = ingest_settings.resolve(ingest_settings.articles_dir) / f"{first.info.article_id}.txt"
    moved = site.url("/news/bridge-moved")
    path.write_text(path.read_text().replace(f"url: {site.url('/news/bridge')}\n", f"url: {moved}\n"))
    fetched = len(site.requests)
    again = ingest_url(ingest_settings, moved)
    assert not again.added and again.info.article_id == first.info.article_id
    assert len(site.requests) == fetched  # known by its new URL, so nothing was downloaded


def test_pdf_url_and_markdown_file_become_articles(ingest_settings: Settings, site: NewsSite, tmp_path: Path):
    from bot.indexing import load_index

    pdf = ingest_url(ingest_settings, site.url("/notice.pdf"))
    assert pdf.added and pdf.info.title == PDF_TITLE
    markdown = tmp_path / "ferry.md"
    markdown.write_text(
        "# The last crossing of the Kerran Flyer\n\n"
        + "The **Kerran Flyer** made its [last crossing](https://example.org) on Sunday with 212 passengers. " * 3
        + "\n\nCaptain Rui Salgado, who steered the ferry for 22 years, sounded the horn three times.\n",
        encoding="utf-8",
    )
    md = ingest_file(ingest_settings, markdown)
    assert md.added and md.info.title == "The last crossing of the Kerran Flyer" and md.articles == 3
    chunks = " ".join(doc.content or "" for doc in load_index(ingest_settings).store.filter_documents())
    assert "Edda Lindqvist" in chunks and "Captain Rui Salgado" in chunks and "**" not in chunks


def test_ingested_article_ids_follow_the_one_id_rule(ingest_settings: Settings):
    """A long file name gets the id ``qabot index add`` would give the same file (``article_id_for``), and a
    second article under that name gets a suffixed id that is still its file name under the same rule."""
    from bot.articles import MAX_ARTICLE_ID_CHARS, article_id_for

    name = "Harbour Authority: " + "the bridge over the western channel reopens " * 3
    first = ingest_bytes(ingest_settings, ARTICLE_HTML, f"{name}.html").info.article_id
    second = ingest_bytes(ingest_settings, make_pdf(PDF_TITLE, PDF_LINES), f"{name}.pdf").info.article_id
    assert first == article_id_for(Path(f"{name}.txt"))
    assert second != first and second.startswith(first[:40])
    for article_id in (first, second):
        assert len(article_id) <= MAX_ARTICLE_ID_CHARS
        assert article_id_for(Path(f"{article_id}.txt")) == article_id
        assert (ingest_settings.resolve(ingest_settings.articles_dir) / f"{article_id}.txt").exists()


# -- chat-only articles: ledger, quota, forget ------------------------------------------------------------------


def test_chat_articles_are_listed_quota_checked_and_forgotten(ingest_settings: Settings, tmp_path: Path):
    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(make_pdf(PDF_TITLE, PDF_LINES))
    chat_a, chat_b = chat_owner(1), chat_owner(2)
    result = ingest_file(ingest_settings, pdf, owner=chat_a, quota=Quota(max_articles=1, max_chars=10_000))
    library = load_library(ingest_settings)
    assert library.owned_by(chat_a) == [result.info.article_id]
    assert not library.is_visible(result.info.article_id, chat_b)
    assert not library.is_visible(result.info.article_id, None)
    assert library.is_visible("aleppo-siege-2016", chat_b)

    html = tmp_path / "bridge.html"
    html.write_bytes(ARTICLE_HTML)
    with pytest.raises(IngestError, match="1 of its 1 articles"):
        ingest_file(ingest_settings, html, owner=chat_a, quota=Quota(max_articles=1, max_chars=10_000))
    with pytest.raises(IngestError, match="10-character limit"):
        ingest_file(ingest_settings, html, owner=chat_b, quota=Quota(max_articles=5, max_chars=10))

    # The same PDF from chat B: not stored twice, but now B sees it too.
    again = ingest_bytes(ingest_settings, pdf.read_bytes(), "copy.pdf", owner=chat_b, quota=Quota(5, 10_000))
    assert not again.added and load_library(ingest_settings).is_visible(result.info.article_id, chat_b)

    assert [i.article_id for i in forget(ingest_settings, [result.info.article_id], chat_a)] == [result.info.article_id]
    assert (ingest_settings.resolve(ingest_settings.articles_dir) / f"{result.info.article_id}.txt").exists()
    forget(ingest_settings, [result.info.article_id], chat_b)
    assert not (ingest_settings.resolve(ingest_settings.articles_dir) / f"{result.info.article_id}.txt").exists()
    assert load_library(ingest_settings).private == {}
    assert forget(ingest_settings, ["aleppo-siege-2016"], chat_a) == []  # shared articles are never forgotten


def test_ledger_is_parsed_once_until_it_changes(ingest_settings: Settings, monkeypatch: pytest.MonkeyPatch):
    """The bot reads the ledger before every question: an unchanged ledger is not parsed again, a Library a
    caller changed does not change the next one, and a ledger another process rewrote is read again."""
    import json

    import bot.ingest.library as library_module

    library = load_library(ingest_settings)
    library.private["mine"] = library_module.PrivateArticle(owners=[chat_owner(1)], chars=10)
    library.save()
    parses = []
    real_loads = json.loads
    monkeypatch.setattr(library_module.json, "loads", lambda text: parses.append(1) or real_loads(text))

    first = load_library(ingest_settings)
    first.private["mine"].owners.append(chat_owner(2))
    first.private["other"] = library_module.PrivateArticle(owners=[chat_owner(3)], chars=5)
    second = load_library(ingest_settings)
    assert parses == []  # what this process saved is known without reading it back
    assert second.private == {"mine": library_module.PrivateArticle(owners=[chat_owner(1)], chars=10)}

    ledger = ingest_settings.resolve(ingest_settings.articles_dir) / library_module.LIBRARY_FILE
    replacement = ledger.with_name("other-process")
    replacement.write_text(json.dumps({"format": 1, "private": {"theirs": {"owners": ["chat:9"], "chars": 1}}}))
    replacement.replace(ledger)
    parsed = load_library(ingest_settings)  # read and parsed again: another process wrote it
    assert parsed.owned_by("chat:9") == ["theirs"]
    parsed.private["theirs"].owners.append(chat_owner(4))  # a caller changes the Library it got ...
    again = load_library(ingest_settings)
    assert again.owned_by("chat:9") == ["theirs"] and again.private["theirs"].owners == ["chat:9"]  # ... not this
    assert parses == [1]


def test_forget_keeps_the_article_private_until_it_is_out_of_the_index(ingest_settings: Settings, tmp_path: Path):
    """A /forget whose re-indexing fails (another writer holds the index) leaves the article listed as private and
    its file in place: its chunks, still in the index, never become visible to every chat."""
    from bot.indexing import index_write_lock, load_index

    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(make_pdf(PDF_TITLE, PDF_LINES))
    chat = chat_owner(1)
    article_id = ingest_file(ingest_settings, pdf, owner=chat).info.article_id
    busy = with_overrides(ingest_settings, {"index.lock_timeout_s": 0.2})
    with index_write_lock(busy.resolve(busy.index_dir), 1.0), pytest.raises(IndexBusyError, match="another"):
        forget(busy, [article_id], chat)
    assert article_id in {info.article_id for info in load_index(busy).articles}  # still served ...
    assert load_library(busy).owned_by(chat) == [article_id]  # ... so still private
    assert (busy.resolve(busy.articles_dir) / f"{article_id}.txt").exists()

    forget(busy, [article_id], chat)
    assert article_id not in {info.article_id for info in load_index(busy).articles}
    assert load_library(busy).private == {}


def test_forget_finishes_a_removal_that_was_interrupted(ingest_settings: Settings, tmp_path: Path):
    """The file is gone (an earlier removal deleted it, then its re-indexing failed) but the index still holds
    the article: /forget takes it out of the index, then out of the ledger."""
    from bot.indexing import load_index

    pdf = tmp_path / "notice.pdf"
    pdf.write_bytes(make_pdf(PDF_TITLE, PDF_LINES))
    chat = chat_owner(1)
    article_id = ingest_file(ingest_settings, pdf, owner=chat).info.article_id
    (ingest_settings.resolve(ingest_settings.articles_dir) / f"{article_id}.txt").unlink()
    assert article_id in {info.article_id for info in load_index(ingest_settings).articles}

    assert [info.article_id for info in forget(ingest_settings, [article_id], chat)] == [article_id]
    assert article_id not in {info.article_id for info in load_index(ingest_settings).articles}
    assert load_library(ingest_settings).private == {}


def test_ingested_page_is_answered_and_its_furniture_is_not(ingest_settings: Settings, site: NewsSite):
    """Through the real service: the article's facts are answered, facts only the furniture states are not."""
    from bot.answering import QAService

    ingest_url(ingest_settings, site.url("/news/bridge"))
    service = QAService.from_settings(ingest_settings)
    answer = service.answer("Who cut the ribbon to open the tidal bridge?")
    assert answer.text is not None and "Ines Calloway" in answer.text
    assert answer.source is not None and answer.source.title.startswith("Tidal bridge")
    # Scoped to the other article, the same (now cached) question must not be answered from this one.
    scoped = service.answer("Who cut the ribbon to open the tidal bridge?", scope=frozenset({"aleppo-siege-2016"}))
    assert "Calloway" not in (scoped.text or "")
    assert all(a.source.article_id == "aleppo-siege-2016" for a in scoped.alternatives)
    assert scoped.source is None or scoped.source.article_id == "aleppo-siege-2016"
    for question in (
        "Where is Harbour Gazette Media Group registered?",
        "Who edits the Morning Brief newsletter?",
        "How many advertising partners use cookies?",
        "Which animal escaped from the Lisbon zoo?",
    ):
        answer = service.answer(question)
        shown = " ".join([answer.text or "", answer.context or "", *(a.text for a in answer.alternatives)])
        assert not any(word in shown for word in ("Wales", "Paulo Brandt", "37", "Zebra", "zebra")), (question, shown)
