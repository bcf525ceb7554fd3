"""The webhook client on its own: which addresses it reaches, that it connects to the address it
checked (a second DNS answer cannot redirect it), that TLS still verifies the URL's name, and
that an answer dripped byte by byte cannot hold a worker beyond the endpoint's timeout.

Name resolution is the one thing replaced here (``socket.getaddrinfo`` for made-up names under
``.test``); the sockets, HTTP and TLS are real, against servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core.exceptions import ImproperlyConfigured

from tests.workers.webhook_receiver import Receiver, serve
from workers.errors import AddressRefused, Permanent, WebhookFailed
from workers.webhook_client import check_url, literal_refusal, post, refusal

real_getaddrinfo = socket.getaddrinfo
HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def loopback_allowed(settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, list[str]], list[str]]:
    """``dns(name, [answers…])``: each lookup of ``name`` takes the next answer (the last one
    repeats); returns the list of lookups made. Other names resolve for real."""
    answers: dict[str, list[str]] = {}
    asked: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in answers:
            return real_getaddrinfo(host, port, *args, **kwargs)
        asked.append(host)
        pending = answers[host]
        address = pending.pop(0) if len(pending) > 1 else pending[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    def add(name: str, addresses: list[str]) -> list[str]:
        answers[name] = list(addresses)
        return asked

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return add


# -- the URL and the addresses -------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/orders?x=1", "http://crm-svc:8080/in", "http://[2606:4700::1]/"],
)
def test_a_webhook_url_may_name_any_http_host(url: str) -> None:
    assert check_url(url).hostname


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.com/", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("https://user:pw@example.com/", "user name or password"),
        ("https:///path", "needs a host"),
        ("https://example.com:0/", "port"),
        ("https://example.com:99999/", "port"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com/\r\nX-Injected: 1", "control characters"),
        ("https://exa_mple!.com/", "not a valid host name"),
    ],
)
def test_a_webhook_url_is_refused_with_the_reason(url: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_url(url)


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.10", "a private address"),
        ("fd00::1", "a private address"),
        ("169.254.169.254", "a link-local address (cloud metadata service)"),
        ("fe80::1", "a link-local address"),
        ("100.100.100.200", "a shared (carrier-grade NAT) address"),
        ("224.0.0.251", "a multicast address"),
        ("ff0e::1", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("0.0.0.0", "an unspecified address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("2002:7f00:1::", "a loopback address"),
        ("64:ff9b::a00:1", "a reserved address"),
    ],
)
def test_non_public_addresses_are_refused_with_what_they_are(address: str, kind: str) -> None:
    reason = refusal(ipaddress.ip_address(address), [])
    assert f"is {kind};" in reason
    assert reason.endswith(
        "webhooks reach public addresses only (QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS)"
    )


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_may_be_reached(address: str) -> None:
    assert refusal(ipaddress.ip_address(address), []) == ""


def test_allowed_networks_open_a_private_range_and_nothing_else(settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["10.1.0.0/16", "fd00:1::/32"]
    assert literal_refusal("10.1.2.3") == ""
    assert literal_refusal("::ffff:10.1.2.3") == "", "the mapped form of an allowed address"
    assert literal_refusal("fd00:1::5") == ""
    assert "is a private address" in literal_refusal("10.2.0.1")
    assert "is a loopback address" in literal_refusal("127.0.0.1")
    assert literal_refusal("hooks.example.com") == "", "a name is checked at send time"


def test_a_bad_allowed_network_is_a_configuration_error(settings: Any) -> None:
    settings.QUAYMASTER_WEBHOOK_ALLOWED_NETWORKS = ["10.1.0.0/16", "intranet"]
    with pytest.raises(ImproperlyConfigured, match="'intranet', which is not a network"):
        literal_refusal("10.1.2.3")


# -- resolution and pinning ----------------------------------------------------------------------


def test_a_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def answers(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", answers)
    refused = r"mixed\.test resolves to 10\.0\.0\.5, a private"
    with pytest.raises(AddressRefused, match=refused) as exc:
        post("https://mixed.test/hook", b"{}", HEADERS, timeout=2)
    assert isinstance(exc.value, Permanent), "dead-lettered, not retried"


def test_a_name_that_does_not_resolve_is_retried() -> None:
    with pytest.raises(WebhookFailed, match="cannot resolve the host"):
        post("http://no-such-host.invalid/hook", b"{}", HEADERS, timeout=2)


@pytest.mark.usefixtures("loopback_allowed")
def test_the_connection_goes_to_the_address_that_was_checked_with_the_host_header_unchanged(
    dns: Callable[[str, list[str]], list[str]],
) -> None:
    with serve() as receiver:
        # A rebinding DNS server: the first answer passes the check, the next would not.
        asked = dns("hooks.example.test", ["127.0.0.1", "10.9.9.9"])
        answer = post(
            f"http://hooks.example.test:{receiver.port}/hook?a=1", b'{"n":1}', HEADERS, timeout=3
        )
    assert answer.status == 204
    assert answer.address == "127.0.0.1"
    assert asked == ["hooks.example.test"], "resolved once: the socket went to the checked address"
    ((headers, body),) = receiver.requests
    assert headers["Host"] == f"hooks.example.test:{receiver.port}"
    assert body == b'{"n":1}'


def test_a_name_that_resolves_to_loopback_is_refused_before_any_connection(
    dns: Callable[[str, list[str]], list[str]],
) -> None:
    with serve() as receiver:
        dns("rebound.example.test", ["127.0.0.1"])
        refused = r"rebound\.example\.test resolves to 127\.0\.0\.1"
        with pytest.raises(AddressRefused, match=refused):
            post(f"http://rebound.example.test:{receiver.port}/", b"{}", HEADERS, timeout=2)
    assert receiver.requests == []


# -- TLS -----------------------------------------------------------------------------------------


def certificate(name: str) -> tuple[bytes, bytes]:
    """A self-signed certificate for ``name`` and its key, PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture
def tls_receiver(tmp_path: Any) -> Iterator[tuple[Receiver, ssl.SSLContext, list[str]]]:
    """An HTTPS receiver with a certificate for hooks.example.test, a client context that
    trusts it, and the server names the clients asked for (SNI)."""
    cert, key = certificate("hooks.example.test")
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    names: list[str] = []
    server.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    client = ssl.create_default_context(cadata=cert.decode())
    with serve(tls=server) as receiver:
        yield receiver, client, names


@pytest.mark.usefixtures("loopback_allowed")
def test_https_sends_the_name_for_sni_and_verifies_the_certificate_against_it(
    dns: Callable[[str, list[str]], list[str]],
    tls_receiver: tuple[Receiver, ssl.SSLContext, list[str]],
) -> None:
    receiver, client, names = tls_receiver
    dns("hooks.example.test", ["127.0.0.1"])
    dns("other.example.test", ["127.0.0.1"])

    url = f"https://hooks.example.test:{receiver.port}/hook"
    assert post(url, b"{}", HEADERS, timeout=3, context=client).status == 204
    assert names == ["hooks.example.test"]
    ((headers, _body),) = receiver.requests
    assert headers["Host"] == f"hooks.example.test:{receiver.port}"

    # Same address, another name: the certificate does not match it, so nothing is sent.
    other = f"https://other.example.test:{receiver.port}/hook"
    with pytest.raises(WebhookFailed, match="certificate"):
        post(other, b"{}", HEADERS, timeout=3, context=client)
    assert len(receiver.requests) == 1


# -- the timeout ---------------------------------------------------------------------------------


@pytest.fixture
def dripping_server() -> Iterator[int]:
    """A server that answers a status line, then one header byte every 0.2 s, forever (each
    read returns well within any socket timeout)."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            while not stop.wait(0.2):
                try:
                    conn.sendall(b"a")
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        listener.close()


@pytest.mark.usefixtures("loopback_allowed")
def test_an_answer_dripped_byte_by_byte_is_cut_at_the_endpoints_timeout(
    dripping_server: int,
) -> None:
    started = time.monotonic()
    with pytest.raises(WebhookFailed, match="no answer within 1s"):
        post(f"http://127.0.0.1:{dripping_server}/", b"{}", HEADERS, timeout=1)
    assert time.monotonic() - started < 3, "the whole exchange is bounded, not each read"
