#!/usr/bin/env python3
"""Open-loop and fixed-count load for bench scenario 8 (the webhook receiver).

  load.py rate  URL FILE RATE SECS [SAMPLES]
                                     sends RATE deliveries/s for SECS seconds, each at its
                                     scheduled time t0 + i/RATE whatever the earlier ones
                                     are doing (open loop: a request whose connection is
                                     busy goes out on another one, opened if need be);
                                     each latency is measured from the scheduled time, so
                                     a server that stalls is charged for every request it
                                     delayed (no coordinated omission).
  load.py count URL FILE N CONC [SAMPLES]
                                     sends N deliveries over CONC keep-alive connections,
                                     each connection one request at a time (closed loop).

SAMPLES: a file to which each request's latency (ms) is appended, one a line, for a
driver that pools several runs. FILE: lines "<X-DI-Signature value> <body>" (bench/webhooks/gen.lua), used in order, one
per request; an error if there are fewer lines than requests. Raw HTTP/1.1 on asyncio
streams (replies with Content-Length or chunked). Prints one line:
  hooks: sent= ok= non2xx= stored= duplicate= errors= conns= wall= p50_ms= p99_ms= max_ms=
         late_p50_ms= late_p99_ms=
late_*: how long after its scheduled time each request was written (the generator's own
delay: asyncio wakes with millisecond precision); it is part of the latencies.
"""
import asyncio
import sys
import time
from urllib.parse import urlsplit


def percentile(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


class Conn:
    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer


async def read_reply(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length, chunked = None, False
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        k = k.strip().lower()
        if k == b"content-length":
            length = int(v)
        elif k == b"transfer-encoding" and b"chunked" in v.lower():
            chunked = True
    if chunked:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
        body = b"".join(parts)
    else:
        body = await reader.readexactly(length or 0)
    return status, body


class Load:
    def __init__(self, url, lines):
        u = urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port, u.path or "/"
        self.reqs = []
        for ln in lines:
            sig, _, body = ln.rstrip(b"\n").partition(b" ")
            self.reqs.append(b"POST " + self.path.encode() + b" HTTP/1.1\r\nHost: " + u.netloc.encode()
                             + b"\r\nContent-Type: application/json\r\nX-DI-Signature: " + sig
                             + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        self.idle = []
        self.conns = 0
        self.ok = self.non2xx = self.stored = self.duplicate = self.errors = 0
        self.lat = []
        self.late = []

    async def connect(self):
        r, w = await asyncio.open_connection(self.host, self.port)
        self.conns += 1
        return Conn(r, w)

    async def one(self, i, scheduled, conn=None):
        """One request on an idle connection (or a new one); returns the connection."""
        try:
            if conn is None:
                conn = self.idle.pop() if self.idle else await self.connect()
            conn.writer.write(self.reqs[i])
            self.late.append(time.perf_counter() - scheduled)
            status, body = await read_reply(conn.reader)
            self.lat.append(time.perf_counter() - scheduled)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            self.errors += 1
            if conn is not None:
                conn.writer.close()
            return None
        if 200 <= status < 300:
            self.ok += 1
        else:
            self.non2xx += 1
        if b'"stored":true' in body:
            self.stored += 1
        elif b'"duplicate":true' in body:
            self.duplicate += 1
        return conn

    async def rate(self, rate, secs):
        n = int(round(rate * secs))
        if n > len(self.reqs):
            raise SystemExit("load.py: %d requests, %d lines in the file" % (n, len(self.reqs)))
        for _ in range(4):  # connections opened before the clock starts
            self.idle.append(await self.connect())

        async def send(i, t):
            conn = await self.one(i, t)
            if conn is not None:
                self.idle.append(conn)

        tasks = []
        t0 = time.perf_counter() + 0.01
        for i in range(n):
            t = t0 + i / rate
            d = t - time.perf_counter()
            if d > 0:
                await asyncio.sleep(d)
            tasks.append(asyncio.ensure_future(send(i, t)))
        await asyncio.gather(*tasks)
        return time.perf_counter() - t0

    async def count(self, n, conc):
        if n > len(self.reqs):
            raise SystemExit("load.py: %d requests, %d lines in the file" % (n, len(self.reqs)))
        nxt = [0]

        async def worker():
            conn = await self.connect()
            while nxt[0] < n:
                i = nxt[0]
                nxt[0] += 1
                conn = await self.one(i, time.perf_counter(), conn)
                if conn is None:
                    conn = await self.connect()

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(conc)))
        return time.perf_counter() - t0


def main():
    mode, url, path = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path, "rb") as f:
        lines = f.readlines()
    load = Load(url, lines)
    if mode == "rate":
        wall = asyncio.run(load.rate(float(sys.argv[4]), float(sys.argv[5])))
    elif mode == "count":
        wall = asyncio.run(load.count(int(sys.argv[4]), int(sys.argv[5])))
    else:
        raise SystemExit("usage: load.py rate URL FILE RATE SECS | count URL FILE N CONC")
    ms = lambda x: x * 1000.0
    print("hooks: sent=%d ok=%d non2xx=%d stored=%d duplicate=%d errors=%d conns=%d wall=%.3f "
          "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f late_p50_ms=%.3f late_p99_ms=%.3f" % (
              len(load.lat) + load.errors, load.ok, load.non2xx, load.stored, load.duplicate,
              load.errors, load.conns, wall, ms(percentile(load.lat, 50)), ms(percentile(load.lat, 99)),
              ms(max(load.lat) if load.lat else float("nan")), ms(percentile(load.late, 50)),
              ms(percentile(load.late, 99))))
    sys.stdout.flush()
    if len(sys.argv) > 6:
        with open(sys.argv[6], "a") as f:
            f.write("".join("%.4f\n" % ms(x) for x in load.lat))


if __name__ == "__main__":
    main()
