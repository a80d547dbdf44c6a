"""Test helpers for article ingestion: a local news site on 127.0.0.1 and a PDF writer.

``NewsSite`` serves realistic pages from a thread (http.server), never the internet: the article page with
its furniture, redirects, a login page, an image, a 404, an over-long page, a slow page and a PDF. It records
every request, so a test can prove that a refused URL was never contacted.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ARTICLE_HTML = (Path(__file__).parent / "data" / "ingest" / "harbour_bridge.html").read_bytes()
# Facts that only the page furniture states: none may be indexed or answered.
FURNITURE_MARKERS = (
    "37 advertising partners",
    "Morning Brief",
    "Paulo Brandt",
    "Zebra escapes",
    "Skerry Rock",
    "Gary from Leeds",
    "mark my words",
    "registered in Wales",
    "0451187",
    "Subscribe from 1 euro",
)
# A second, shorter page (sent as a file in the tests): its own facts, the same kind of furniture.
FERRY_HTML = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>The Kerran Flyer makes its last crossing | The Harbour Gazette</title>
<meta property="og:site_name" content="The Harbour Gazette"></head><body>
<div class="cookie-consent"><p>We use cookies from 37 advertising partners.</p><button>Accept</button></div>
<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/subscribe">Subscribe from 1 euro a week</a></nav>
<main><article><h1>The Kerran Flyer makes its last crossing</h1>
<p>The Kerran Flyer, the ferry that linked the two banks of Port Kerran for 68 years, made its last crossing
on Sunday with 212 passengers on board, most of them wearing the blue scarves of the old ferry company.</p>
<p>Captain Rui Salgado, who steered the ferry for 22 years, sounded the horn three times as the boat left the
north quay. Several former crew members joined him on the bridge for the ten-minute trip.</p>
<p>The ferry will be towed to the maritime museum in Aldmouth next month, where it will be restored and opened
to visitors in the spring. The museum paid a symbolic price of one euro for the boat.</p>
</article>
<aside class="newsletter"><p>Sign up for the Morning Brief, edited by Paulo Brandt.</p></aside>
<section class="comments"><p>Gary from Leeds: waste of money, mark my words.</p></section></main>
<footer><p>© 2026 Harbour Gazette Media Group Ltd, registered in Wales.</p></footer></body></html>
""".encode()
LOGIN_HTML = b"""<!DOCTYPE html><html><head><title>Sign in | The Harbour Gazette</title></head><body>
<nav><a href="/">Home</a> <a href="/news">News</a></nav>
<main><h1>Sign in to continue reading</h1><p>Subscribers get unlimited access to every story.</p>
<form action="/login" method="post"><label>Email <input type="email" name="email"></label>
<label>Password <input type="password" name="password"></label><button>Sign in</button></form>
<p>Forgot your password? Contact our help desk.</p></main></body></html>"""
PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def make_pdf(title: str, lines: list[str]) -> bytes:
    """A one-page PDF with a text layer (Helvetica, one text line per entry) and a /Title in its metadata.

    Written by hand, byte offsets and all, because pypdf reads text but does not lay out new text.
    """

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = "BT /F1 10 Tf 12 TL 50 780 Td " + " ".join(f"({escape(line)}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Title ({escape(title)}) /Author (Harbour Authority) >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{offset:010d} 00000 n \n" for offset in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 6 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# A harbour notice as a PDF: lines wrapped the way a PDF wraps them (sentences cross line ends).
PDF_LINES = [
    "The harbour authority of Port Kerran will dredge the western channel between 4 May and 19 June.",
    "During the works the channel is closed to vessels with a draught of more than three metres, and",
    "pilot boats will guide larger ships through the eastern channel instead. The dredger Marlijn,",
    "chartered from a Rotterdam contractor, will remove about 90,000 cubic metres of silt, which will",
    "be used to rebuild the salt marsh at Gull Point. Harbour master Edda Lindqvist said the channel",
    "had not been dredged since 2009 and that the silt now limited access at low tide.",
    "Fishing boats may use the western channel at high tide on weekends.",
]
PDF_TITLE = "Notice to mariners: dredging of the western channel"


@dataclass
class NewsSite:
    """A local web server with a fixed set of pages; ``requests`` lists (path, Host header) as they arrive."""

    host: str = "127.0.0.1"
    pages: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    slow_seconds: float = 3.0

    def __post_init__(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append((self.path, self.headers.get("Host", "")))
                if self.path == "/slow":
                    time.sleep(site.slow_seconds)
                if self.path == "/drip":
                    self._drip()
                    return
                if self.path == "/slow-hop":  # a redirect to itself, each hop well inside the read timeout
                    time.sleep(0.4)
                status, headers, body = site.pages.get(self.path, (404, {"Content-Type": "text/html"}, b"not found"))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in headers and not headers.get("X-No-Length"):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drip(self) -> None:
                """An HTML page sent one byte every 0.3 s (over 30 s in all): each read is quick, the whole is not."""
                body = b"<html><body><p>" + b"x" * 85 + b"</p></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        time.sleep(0.3)
                except OSError:
                    pass  # the client gave up: what the test wants

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def news_site() -> NewsSite:
    """The site every ingest test uses."""
    site = NewsSite()
    html = {"Content-Type": "text/html; charset=utf-8"}
    site.pages.update(
        {
            "/news/bridge": (200, html, ARTICLE_HTML),
            "/news/bridge-copy": (200, html, ARTICLE_HTML),
            "/go/bridge": (302, {"Location": "/news/bridge"}, b""),
            "/login": (200, html, LOGIN_HTML),
            "/logo.png": (200, {"Content-Type": "image/png"}, PNG_BYTES),
            "/feed.json": (200, {"Content-Type": "application/json"}, b'{"items": []}'),
            "/huge": (200, html, b"<html><body><p>" + b"word " * 60_000 + b"</p></body></html>"),
            "/huge-unannounced": (
                200,
                {**html, "X-No-Length": "1", "Connection": "close"},
                b"<html><body><p>" + b"word " * 60_000 + b"</p></body></html>",
            ),
            "/empty": (
                200,
                html,
                b"<html><body><nav><a href='/'>Home</a></nav><footer>(c) 2026</footer></body></html>",
            ),
            "/slow": (200, html, ARTICLE_HTML),
            "/notice.pdf": (200, {"Content-Type": "application/pdf"}, make_pdf(PDF_TITLE, PDF_LINES)),
            "/loop": (302, {"Location": "/loop"}, b""),
            "/slow-hop": (302, {"Location": "/slow-hop"}, b""),
        }
    )
    return site
