"""``/metrics`` on the web process, and the middleware that counts and times its requests.

``/metrics`` answers only a request that shows ``QUAYMASTER_METRICS_TOKEN`` as a bearer token
or comes from ``QUAYMASTER_METRICS_ALLOW_NETWORKS`` (loopback by default; the client address
is the one the login lockout uses: ``REMOTE_ADDR``, or behind a proxy the header
``QUAYMASTER_CLIENT_IP_HEADER`` names). A wrong token is 403; anyone else gets 404, as if there
were no such page. Under gunicorn it merges every worker's values (multiprocess mode, see
``quaymaster.metrics``).

The middleware labels a request with its URL's name (``resolver_match.view_name``), never
with its path: ids in paths would make a series per record. Requests no URL matched are
``view="unmatched"``.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from audit.context import client_ip
from quaymaster import metrics

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class MetricsMiddleware:
    """Counts every request by view, method and status, and times it (first in the list, so
    the time includes the other middleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        metrics.HTTP_DURATION.labels(view, method).observe(time.perf_counter() - started)
        metrics.HTTP_REQUESTS.labels(view, method, str(response.status_code)).inc()
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@cache
def allowed_networks(raw: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The setting's networks (already checked CIDRs: ``quaymaster.config.metrics_networks``)."""
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in raw)


def _bearer(request: HttpRequest) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def may_scrape(request: HttpRequest) -> bool | None:
    """True: allowed; False: a wrong token (403); None: neither token nor network (404)."""
    expected = str(getattr(settings, "QUAYMASTER_METRICS_TOKEN", ""))
    token = _bearer(request)
    if token is not None and expected:
        return hmac.compare_digest(token.encode(), expected.encode())
    address = client_ip(request)
    if address is not None:
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack listener's IPv4 client
        networks = allowed_networks(
            tuple(getattr(settings, "QUAYMASTER_METRICS_ALLOW_NETWORKS", ()))
        )
        if any(ip in net for net in networks):  # an address of the other version: False
            return True
    return False if token is not None else None


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    allowed = may_scrape(request)
    if allowed is None:
        return HttpResponse("Not found.\n", status=404, content_type="text/plain")
    if not allowed:
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)
