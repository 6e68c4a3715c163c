"""Download speed of ``pistachio_tui.fix.downloads`` against ``curl`` on the same files.

Two servers, both aiohttp in a child process:

- **loopback**: a 200 MB file (40 MB with ``--quick``, still large enough for ranges) served with
  ``FileResponse`` (sendfile), as fast as loopback goes;
- **throttled**: the same file, each connection held to ``THROTTLE`` bytes per
  second (as many mirrors and CDNs limit each connection), ``Range`` honoured.
  Here parallel ranged downloads should win by about the number of connections
  (up to ``CONNECTIONS``, one per 16 MB).

On loopback our download keeps to its first connection (it would finish the
rest within a second on its own), so that row measures one stream.

Pistachio's download writes ``.part``, checks the size, sha256 and safetensors
header, and renames, as it always does; curl only writes. A bare httpx
stream loop (the library that builds our requests; the bytes come over our
own transport, ``fix.bulkhttp``) is a second yardstick on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, bench_main

RUNS = 3
MB = 1024 * 1024
#: Bytes per second the throttled server allows each connection.
THROTTLE = 20 * MB

SERVER = r"""
import asyncio, os, sys
from aiohttp import web

PATH, THROTTLE = sys.argv[1], int(sys.argv[2])
SIZE = os.path.getsize(PATH)
BLOCK = 256 * 1024

async def plain(request):
    return web.FileResponse(PATH)

async def throttled(request):
    start, end = 0, SIZE
    status = 200
    rng = request.headers.get("Range", "")
    if rng.startswith("bytes="):
        first, _, last = rng[6:].partition("-")
        start, end, status = int(first), min(SIZE, int(last) + 1) if last else SIZE, 206
    response = web.StreamResponse(status=status)
    response.content_length = end - start
    response.content_type = "application/octet-stream"
    if status == 206:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{SIZE}"
    await response.prepare(request)
    began = asyncio.get_running_loop().time()
    sent = 0
    try:
        with open(PATH, "rb") as fh:
            fh.seek(start)
            while sent < end - start:
                block = fh.read(min(BLOCK, end - start - sent))
                await response.write(block)
                sent += len(block)
                ahead = sent / THROTTLE - (asyncio.get_running_loop().time() - began)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await response.write_eof()
    except ConnectionError:
        pass  # the client closed a span it had filled (its first answer runs to the end of the file)
    return response

app = web.Application()
app.router.add_get("/model.safetensors", plain)
app.router.add_get("/throttled/model.safetensors", throttled)

async def main():
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def make_file(path: Path, size: int) -> str:
    """A safetensors file of random bytes (one uint8 tensor), so nothing on the way can compress
    it and the download's content check passes as for a real model; returns the sha256."""
    header = json.dumps({"w": {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]}}).encode()
    n = size - 8 - len(header) - 32
    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (size - 8 - n - len(header))
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for block in (struct.pack("<Q", len(header)) + header, *(os.urandom(MB) for _ in range(n // MB)),
                      os.urandom(n % MB)):
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def pistachio_download(url: str, target: Path, sha: str, size: int) -> None:
    from pistachio_tui.fix.downloads import download

    asyncio.run(download(url, target, sha256=sha, expected_size=size))


def curl_download(url: str, target: Path) -> None:
    subprocess.run(["curl", "-s", "-o", str(target), url], check=True)


def httpx_download(url: str, target: Path) -> None:
    """The same HTTP library as ours, with nothing on top: stream and write."""
    import httpx

    async def fetch() -> None:
        async with httpx.AsyncClient(timeout=30) as client, client.stream("GET", url) as response:
            with target.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)

    asyncio.run(fetch())


def _speeds(contenders: dict, url: str, folder: Path, sha: str, size: int, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for n in range(runs + 1):
        for name, fetch in contenders.items():
            target = folder / f"{name}-{n}.safetensors"
            elapsed = timed(lambda: pistachio_download(url, target, sha, size) if fetch is None
                            else fetch(url, target))
            assert target.stat().st_size == size, name
            target.unlink()
            if n or runs == 1:  # the first round warms the page cache and the server
                times[name].append(elapsed)
    return {name: size / MB / statistics.median(t) for name, t in times.items()}


def run(args) -> list[Figure]:
    from pistachio_tui.fix.downloads import CONNECTIONS

    size = (40 if args.quick else 200) * MB
    curl = shutil.which("curl")
    contenders = {"ours": None, "httpx": httpx_download}
    if curl:
        contenders["curl"] = curl_download
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "source.bin"
        sha = make_file(source, size)
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(source), str(THROTTLE)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{int(server.stdout.readline())}"
            speed = _speeds(contenders, f"{base}/model.safetensors", folder, sha, size, RUNS)
            slow = {"ours": None, **({"curl": curl_download} if curl else {"httpx": httpx_download})}
            throttled = _speeds(slow, f"{base}/throttled/model.safetensors", folder, sha, size, 1)
        finally:
            server.terminate()
            server.wait()
    mb = size / MB
    note = f"{mb:.0f} MB over loopback, median of {RUNS}; ours adds .part, sha256, content check and the rename"
    figures = [Figure("download speed", speed["ours"], "MB/s", "httpx async stream + write", speed["httpx"],
                      note=note)]
    if curl:
        figures.append(Figure("download speed", speed["ours"], "MB/s", "curl -s -o", speed["curl"], note=note))
    else:
        figures[0].note += "; curl not found, so only the httpx loop is a yardstick"
    other = "curl" if curl else "httpx"
    figures.append(Figure("download, server limits each connection", throttled["ours"], "MB/s",
                          f"{'curl -s -o' if curl else 'httpx stream'} (one connection)", throttled[other],
                          note=f"{mb:.0f} MB, {THROTTLE // MB} MB/s per connection; ours uses up to "
                               f"{CONNECTIONS} ranged connections"))
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
