"""Download one web page or PDF safely: size, type, time and redirect limits, and an SSRF guard.

Why so careful: in the Telegram bot anyone may hand us a URL, and the machine that fetches it can usually
reach things the sender cannot (cloud metadata at 169.254.169.254, databases on 10.x, admin pages on
localhost). So every hop — the first URL and each redirect, followed by hand — is resolved here, refused
when any of its addresses is not public, and then connected to *at the address we checked*: the URL is
rewritten to that IP (Host header and TLS server name keep the real host name, so virtual hosts and
certificate checks work as before). A DNS answer that changes between the check and the connect (DNS
rebinding) is therefore never used. ``ingest.allow_private_urls`` switches the address check off (tests
against a local server); the pinning stays.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from bot.config import IngestSettings
from bot.errors import IngestError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
AddressPolicy = Callable[[IPAddress], bool]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
PDF_TYPES = frozenset({"application/pdf"})
ACCEPTED_TYPES = HTML_TYPES | PDF_TYPES
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class FetchedDocument:
    """What a URL gave us: the bytes and how to read them."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    content_type: str  # "text/html", "application/xhtml+xml" or "application/pdf"
    charset: str | None
    body: bytes


def is_public_address(address: IPAddress) -> bool:
    """True only for globally routable unicast addresses: the guard's rule.

    ``is_global`` already excludes private, loopback, link-local, shared (100.64/10), documentation and
    reserved ranges; multicast is checked on its own because some multicast ranges count as global.
    An IPv4 address wrapped in IPv6 — mapped (``::ffff:127.0.0.1``) or 6to4 (``2002:7f00:1::``, which a 6to4
    relay turns into a packet for 127.0.0.1) — is judged as the IPv4 address it carries. Teredo (2001::/32)
    is refused outright: the client address inside is obfuscated and the tunnel's relay is not ours to judge.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.teredo is not None:
            return False
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            address = embedded
    return address.is_global and not (address.is_multicast or address.is_unspecified or address.is_reserved)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host`` (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise IngestError(f"cannot resolve host {host!r}: {getattr(error, 'strerror', None) or error}") from error
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def fetch_url(
    url: str,
    settings: IngestSettings,
    *,
    resolver: Resolver = system_resolver,
    address_allowed: AddressPolicy | None = None,
) -> FetchedDocument:
    """GET ``url`` (HTML or PDF, at most ``settings.max_bytes``) or raise IngestError with a one-line reason.

    ``address_allowed`` decides which resolved addresses may be contacted; by default public ones only, or
    any when ``settings.allow_private_urls``. Tests pass their own to stand a local server in for the internet.
    """
    if address_allowed is None:
        address_allowed = (lambda _address: True) if settings.allow_private_urls else is_public_address
    timeout = httpx.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s)
    deadline = time.monotonic() + settings.total_timeout_s
    current = url
    # trust_env=False: a proxy from the environment would connect on its own and bypass the pinned address.
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        for hop in range(settings.max_redirects + 1):
            _check_deadline(deadline, url, settings)  # a chain of slow redirects counts against the same limit
            request = _pinned_request(client, current, settings, resolver, address_allowed)
            try:
                response = client.send(request, stream=True)
            except httpx.TimeoutException as error:
                raise IngestError(f"{_host(current)} did not answer in time ({type(error).__name__})") from error
            except httpx.HTTPError as error:
                raise IngestError(f"cannot fetch {current}: {error or type(error).__name__}") from error
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location")
                    if not location:
                        raise IngestError(f"{current} redirects without saying where to")
                    if hop == settings.max_redirects:
                        raise IngestError(f"more than {settings.max_redirects} redirects, starting at {url}")
                    current = urljoin(current, location)
                    continue
                return _read_document(url, current, response, settings, deadline)
            finally:
                response.close()
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


def _check_deadline(deadline: float, url: str, settings: IngestSettings) -> None:
    if time.monotonic() > deadline:
        raise IngestError(f"{url} took over {settings.total_timeout_s:g} s to download")


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _pinned_request(
    client: httpx.Client, url: str, settings: IngestSettings, resolver: Resolver, address_allowed: AddressPolicy
) -> httpx.Request:
    """A request for ``url`` that connects to a checked address of its host and nowhere else."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise IngestError(f"only http and https URLs can be added, not {parts.scheme or 'a bare path'!r}: {url}")
    if not parts.hostname:
        raise IngestError(f"no host name in URL {url}")
    if parts.username or parts.password:
        raise IngestError("URLs with a user name or password are refused")
    host = parts.hostname
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise IngestError(f"bad port in URL {url}") from error
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in _resolve(host, port, resolver)]
    refused = [a for a in addresses if not address_allowed(a)]
    if not addresses or refused:
        shown = refused[0] if refused else "nothing"
        raise IngestError(
            f"refused {host}: it resolves to {shown}, which is not a public internet address "
            "(loopback, private, link-local and other internal addresses are never fetched)"
        )
    pinned = addresses[0]
    netloc = f"[{pinned}]" if pinned.version == 6 else str(pinned)
    pinned_url = urlunsplit((parts.scheme, f"{netloc}:{port}", parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{parts.port}"
    headers = {
        "Host": host_header,
        "User-Agent": settings.user_agent,
        "Accept": "text/html,application/xhtml+xml,application/pdf;q=0.9",
        "Accept-Encoding": "identity",  # plain bytes: the size limit counts what we store
    }
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return client.build_request("GET", pinned_url, headers=headers, extensions=extensions)


def _resolve(host: str, port: int, resolver: Resolver) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]  # a literal address needs no lookup
    except ValueError:
        return resolver(host, port)


def _read_document(
    url: str, final_url: str, response: httpx.Response, settings: IngestSettings, deadline: float
) -> FetchedDocument:
    """Check status, type and size, then stream the body up to the limit."""
    if response.status_code >= 400:
        raise IngestError(f"{final_url} answered {response.status_code} {response.reason_phrase}: no article there")
    if response.status_code != 200:
        raise IngestError(f"{final_url} answered {response.status_code} {response.reason_phrase}, not a page")
    content_type, _, parameters = response.headers.get("content-type", "").partition(";")
    content_type = content_type.strip().lower()
    if content_type not in ACCEPTED_TYPES:
        raise IngestError(
            f"{final_url} is {content_type or 'of unknown type'}; only HTML pages and PDF files can be added"
        )
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_bytes:
        raise IngestError(f"{final_url} is {int(declared):,} bytes; the limit is {settings.max_bytes:,}")
    body = bytearray()
    try:
        # Decoded bytes are counted: a server that compresses anyway (we ask for identity) gets the same limit,
        # and a compression bomb is cut off after one network read's worth of output.
        # No chunk size: each network read is yielded as it arrives (a size would buffer until that many bytes
        # came), so the deadline is checked even against a server that drips one byte at a time.
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > settings.max_bytes:
                raise IngestError(f"{final_url} is over the {settings.max_bytes:,}-byte limit")
            _check_deadline(deadline, final_url, settings)
    except httpx.TimeoutException as error:
        raise IngestError(f"{_host(final_url)} stopped sending ({type(error).__name__})") from error
    except httpx.HTTPError as error:
        raise IngestError(f"download of {final_url} failed: {error or type(error).__name__}") from error
    charset = None
    for parameter in parameters.split(";"):
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"')
    return FetchedDocument(url=url, final_url=final_url, content_type=content_type, charset=charset, body=bytes(body))
