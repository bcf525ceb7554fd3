"""The webhook handler's HTTP client: it reaches public addresses only, and connects to the
address it checked.

A webhook's URL is admin configuration (``WebhookEndpoint``), but its host name is resolved at
send time and DNS answers can change (or be made to change), so the check happens after
resolution: every address the name resolves to must be public (``is_global``, not multicast,
not reserved, once an IPv4-mapped IPv6 address is read as the IPv4 address it is, and a 6to4
address as the IPv4 address inside it) or inside ``QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS``. The
socket is then opened to one of those checked addresses (never by name again, which would
resolve a second time), while the ``Host`` header, TLS SNI and certificate verification keep
using the name. Redirects are not followed, every socket operation and the whole exchange are
bounded by the endpoint's timeout, and at most ``MAX_BODY`` bytes of the answer are read.

A refused address raises ``AddressRefused`` (permanent: the message is dead-lettered with the
reason); no answer, or a non-2xx one, raises ``WebhookFailed`` (retried with backoff).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from workers.errors import AddressRefused, WebhookFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Bytes of an answer's body read (and dropped): enough to end a short answer cleanly.
MAX_BODY = 4096
SETTING = "QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS"
PUBLIC_ONLY = f"webhooks reach public addresses only ({SETTING})"
_CGNAT = ipaddress.ip_network("100.64.0.0/10")


# -- the URL -------------------------------------------------------------------------------------


def check_url(url: str) -> SplitResult:
    """``url`` split, if it is one a webhook may have (else ``ValueError`` saying why):
    http or https, a host, a valid port, no user name or password, nothing unprintable."""
    if not isinstance(url, str) or not url:
        raise ValueError("Enter an http:// or https:// URL.")
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValueError("The URL may not contain spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("The URL must start with http:// or https://.")
    if parts.username is not None or parts.password is not None:
        raise ValueError("The URL may not carry a user name or password.")
    host = parts.hostname
    if not host:
        raise ValueError("The URL needs a host, e.g. https://hooks.example.com/orders.")
    try:
        parts.port  # noqa: B018 (a property that raises on a bad port)
    except ValueError:
        raise ValueError("The URL's port must be a number from 1 to 65535.") from None
    if parts.port == 0:
        raise ValueError("The URL's port must be a number from 1 to 65535.")
    if parse_address(host) is None:
        try:
            encoded = host.encode("idna")
        except UnicodeError:
            raise ValueError(f"{host!r} is not a valid host name.") from None
        if len(encoded) > 253 or not all(
            0 < len(label) <= 63 and label.replace(b"-", b"").isalnum()
            for label in encoded.rstrip(b".").split(b".")
        ):
            raise ValueError(f"{host!r} is not a valid host name.")
    return parts


def parse_address(host: str) -> IPAddress | None:
    """The IP address ``host`` is written as, or None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


# -- which addresses may be reached --------------------------------------------------------------


def allowed_networks() -> list[IPNetwork]:
    """The networks reachable besides public addresses (the setting, parsed on each call: it
    is a short list and tests change it)."""
    networks: list[IPNetwork] = []
    for entry in getattr(settings, SETTING, []) or []:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"{SETTING} lists {entry!r}, which is not a network (e.g. 10.1.0.0/16)."
            ) from None
    return networks


def _kind(address: IPAddress) -> str:
    """What sort of non-public address this is, with its article."""
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        if str(address) == "169.254.169.254":
            return "a link-local address (cloud metadata service)"
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if address.is_reserved:
        return "a reserved address"
    if address.is_private:
        return "a private address"
    return "not a public address"


def _public(address: IPAddress) -> bool:
    if not address.is_global or address.is_multicast or address.is_reserved:
        return False
    inner = address.sixtofour if isinstance(address, ipaddress.IPv6Address) else None
    return inner is None or _public(inner)


def _refused(address: IPAddress, networks: list[IPNetwork]) -> tuple[str, str] | None:
    """None when ``address`` may be reached; else how to write it and what sort it is."""
    plain = address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        plain = address.ipv4_mapped
    if any(plain in network or address in network for network in networks):
        return None
    if _public(plain):
        return None
    written, shown = str(address), plain
    if plain is not address:
        written = f"::ffff:{plain} (IPv4 {plain})"
    elif isinstance(plain, ipaddress.IPv6Address) and plain.sixtofour and plain.is_global:
        shown = plain.sixtofour  # public itself: what makes it refused is the address inside
        written += f" (6to4 for {shown})"
    return written, _kind(shown)


def refusal(address: IPAddress, networks: list[IPNetwork] | None = None) -> str:
    """Why ``address`` may not be reached ("" when it may), e.g. "127.0.0.1 is a loopback
    address; webhooks reach public addresses only (QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS)"."""
    found = _refused(address, allowed_networks() if networks is None else networks)
    if found is None:
        return ""
    written, kind = found
    return f"{written} is {kind}; {PUBLIC_ONLY}"


def literal_refusal(host: str) -> str:
    """For a host written as an IP address, why it may not be reached ("" for a name or an
    allowed address). The pages use it; the binding check happens at send time after DNS."""
    address = parse_address(host)
    return refusal(address) if address is not None else ""


def resolve(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, every one checked; ``AddressRefused`` if any is not
    allowed (a name that resolves to a public and a private address is refused: which one a
    connection would use is not ours to choose), ``WebhookFailed`` if it does not resolve."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookFailed(host, f"cannot resolve the host: {exc}") from exc
    networks = allowed_networks()
    addresses: list[str] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        text = str(sockaddr[0])
        if text in addresses:
            continue
        refused = _refused(ipaddress.ip_address(text.split("%", 1)[0]), networks)
        if refused is not None:
            written, kind = refused
            if parse_address(host) is None:
                raise AddressRefused(f"{host} resolves to {written}, {kind}; {PUBLIC_ONLY}")
            raise AddressRefused(f"{written} is {kind}; {PUBLIC_ONLY}")
        addresses.append(text)
    if not addresses:
        raise WebhookFailed(host, "the host resolves to no address")
    return addresses


# -- connecting to the checked address -----------------------------------------------------------


def _connect(addresses: list[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of the checked ``addresses`` that answers, all tries
    within ``timeout`` together."""
    problem: OSError = TimeoutError("timed out")
    started = time.monotonic()
    for address in addresses:
        remaining = None if timeout is None else timeout - (time.monotonic() - started)
        if remaining is not None and remaining <= 0:
            break
        try:
            return socket.create_connection((address, port), remaining)
        except OSError as exc:
            problem = exc
    raise problem


class PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to ``host`` (its ``Host`` header) over a socket opened to checked addresses."""

    def __init__(self, host: str, port: int, *, addresses: list[str], timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.addresses = addresses

    def connect(self) -> None:
        self.sock = _connect(self.addresses, self.port, self.timeout)


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS over a socket opened to checked addresses; SNI and the certificate check use
    ``host``, the name in the URL."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: list[str],
        timeout: float,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.ssl_context = context or ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self.ssl_context)
        self.addresses = addresses

    def connect(self) -> None:
        raw = _connect(self.addresses, self.port, self.timeout)
        self.sock = raw  # so that the deadline can cut a handshake that drags on
        try:
            self.sock = self.ssl_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class _Deadline:
    """Cuts the connection's socket when the whole exchange has taken ``seconds`` (a socket
    timeout bounds one read; an answer dripped a byte at a time would outlast it)."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.connection = connection
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def _expire(self) -> None:
        self.expired = True
        sock = self.connection.sock
        if sock is not None:
            # The plain socket's shutdown, even under TLS: the reader sees the end of the stream.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._timer.cancel()


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    address: str
    seconds: float


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    label: str = "",
    context: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``body`` to ``url`` after checking where its host resolves; a 2xx ``Answer`` or an
    exception (``AddressRefused``: permanent; ``WebhookFailed``: retry). ``label`` names the
    destination in errors (default: the URL's host)."""
    try:
        parts = check_url(url)
    except ValueError as exc:
        raise AddressRefused(f"The webhook URL cannot be used: {exc}") from None
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    label = label or host
    addresses = resolve(host, port)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = PinnedHTTPSConnection(
            host, port, addresses=addresses, timeout=timeout, context=context
        )
    else:
        connection = PinnedHTTPConnection(host, port, addresses=addresses, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    deadline = _Deadline(connection, timeout)
    peer = addresses[0]
    try:
        with deadline:
            try:
                connection.connect()
                if deadline.expired:
                    raise TimeoutError
                if connection.sock is not None:
                    peer = str(connection.sock.getpeername()[0])
                connection.request("POST", target, body=body, headers=headers)
                response = connection.getresponse()
                if deadline.expired:  # the cut can read as the end of the headers
                    raise TimeoutError
            except (OSError, http.client.HTTPException) as exc:
                if deadline.expired:
                    raise WebhookFailed(label, f"no answer within {timeout:g}s") from exc
                raise WebhookFailed(label, f"no answer: {exc or type(exc).__name__}") from exc
            # The status is the answer: what follows it is read only to end it cleanly.
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read(MAX_BODY)
    finally:
        connection.close()
    seconds = time.monotonic() - started
    if not 200 <= response.status < 300:
        detail = f"HTTP {response.status} {response.reason}".rstrip()
        if 300 <= response.status < 400:
            detail += " (redirects are not followed)"
        raise WebhookFailed(label, detail)
    return Answer(response.status, response.reason, peer, seconds)
