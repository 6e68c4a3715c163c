"""Download speed of ``pistachio_tui.fix.downloads`` against ``curl`` on the same loopback file.

A 200 MB file of random bytes (20 MB with ``--quick``) is served by aiohttp
(``FileResponse``, sendfile) from a child process. Pistachio's download
writes ``.part``, hashes every chunk with sha256, verifies and renames, as
it always does; curl only writes. A bare httpx stream loop (the library
ours is built on) is a second yardstick, and the only one without curl.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, bench_main

RUNS = 3
MB = 1024 * 1024

SERVER = r"""
import asyncio, sys
from aiohttp import web

async def serve(request):
    return web.FileResponse(sys.argv[1])

app = web.Application()
app.router.add_get("/model.safetensors", serve)

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
    """Random bytes, so nothing on the way can compress them; returns the sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MB):
            block = os.urandom(MB)
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


def run(args) -> list[Figure]:
    size = (20 if args.quick else 200) * MB
    curl = shutil.which("curl")
    contenders = {"ours": None, "httpx": httpx_download}
    if curl:
        contenders["curl"] = curl_download
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "source.bin"
        sha = make_file(source, size)
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(source)], stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{int(server.stdout.readline())}/model.safetensors"
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for n in range(RUNS + 1):
                for name, fetch in contenders.items():
                    target = folder / f"{name}-{n}.safetensors"
                    elapsed = timed(lambda: pistachio_download(url, target, sha, size) if fetch is None
                                    else fetch(url, target))
                    assert target.stat().st_size == size, name
                    target.unlink()
                    if n:  # the first round warms the page cache and the server
                        times[name].append(elapsed)
        finally:
            server.terminate()
            server.wait()
    mb = size / MB
    speed = {name: mb / statistics.median(t) for name, t in times.items()}
    note = f"{mb:.0f} MB over loopback, median of {RUNS}; ours adds .part, sha256 and the rename"
    figures = [Figure("download speed", speed["ours"], "MB/s", "httpx async stream + write", speed["httpx"],
                      note=note)]
    if curl:
        figures.append(Figure("download speed", speed["ours"], "MB/s", "curl -s -o", speed["curl"], note=note))
    else:
        figures[0].note += "; curl not found, so only the httpx loop is a yardstick"
    return figures


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
