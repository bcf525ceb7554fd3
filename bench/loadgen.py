"""A small asyncio HTTP/1.1 load generator (standard library only).

httpx is not in the virtualenv, and a thread pool of urllib3 clients would spend the bench
process's GIL on client work; asyncio streams cost a few tens of microseconds per request.
gunicorn's sync workers close the connection after every response, so each request opens its
own connection — as every real client of those workers does.

``run_load`` keeps ``concurrency`` requests in flight for ``warmup + duration`` seconds and
counts only what completes inside the measured window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.harness import percentile


@dataclass
class LoadResult:
    completed: int = 0
    errors: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    first_error: str | None = None

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    def latency_ms(self, pct: float) -> float:
        return percentile(self.latencies, pct) * 1000

    def summary(self) -> dict[str, Any]:
        return {
            "completed": self.completed,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 2),
            "p50_ms": round(self.latency_ms(50), 3),
            "p99_ms": round(self.latency_ms(99), 3),
            "statuses": dict(self.statuses),
            "first_error": self.first_error,
        }


def encode_request(url: str, body: Any, headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one ``POST url`` with a JSON body."""
    parts = urlsplit(url)
    payload = json.dumps(body, separators=(",", ":")).encode()
    lines = [
        f"POST {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _exchange(host: str, port: int, raw: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        body = await (reader.readexactly(length) if length is not None else reader.read())
        return status, body
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def _load(
    host: str, port: int, raws: list[bytes], concurrency: int, warmup: float, duration: float
) -> list[LoadResult]:
    """Each client sends the requests of ``raws`` in turn (client i starts at i), so a mixed
    load gives every kind of request the same moments of the machine."""
    results = [LoadResult() for _ in raws]
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + duration

    async def client(offset: int) -> None:
        turn = offset
        while True:
            began = time.perf_counter()
            if began >= stop_at:
                return
            index = turn % len(raws)
            turn += 1
            try:
                status, body = await asyncio.wait_for(
                    _exchange(host, port, raws[index]), timeout=60
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                status, body = 0, repr(exc).encode()
            ended = time.perf_counter()
            if began < measure_from or ended > stop_at:
                continue  # warm-up, or finished after the window closed
            result = results[index]
            result.statuses[status] += 1
            if 200 <= status < 300:
                result.completed += 1
                result.latencies.append(ended - began)
            else:
                result.errors += 1
                if result.first_error is None:
                    result.first_error = f"{status}: {body[:300].decode(errors='replace')}"

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    for result in results:
        result.seconds = duration
    return results


def run_load(
    url: str,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    concurrency: int = 4,
    duration: float = 3.0,
    warmup: float = 0.5,
) -> LoadResult:
    return run_mixed(
        [(url, body, headers)], concurrency=concurrency, duration=duration, warmup=warmup
    )[0]


def run_mixed(
    requests: list[tuple[str, Any, dict[str, str] | None]],
    *,
    concurrency: int = 2,
    duration: float = 3.0,
    warmup: float = 0.5,
) -> list[LoadResult]:
    """Several kinds of request to one server, interleaved request by request; one result
    per kind."""
    parts = urlsplit(requests[0][0])
    raws = [encode_request(url, body, headers) for url, body, headers in requests]
    return asyncio.run(
        _load(parts.hostname or "127.0.0.1", parts.port or 80, raws, concurrency, warmup, duration)
    )


def post_once(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request, for checks before a measurement: (status, decoded JSON or text)."""
    parts = urlsplit(url)
    raw = encode_request(url, body, headers)
    status, data = asyncio.run(_exchange(parts.hostname or "127.0.0.1", parts.port or 80, raw))
    try:
        return status, json.loads(data)
    except ValueError:
        return status, data.decode(errors="replace")
