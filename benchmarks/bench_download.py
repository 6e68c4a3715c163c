"""Download speed of ``pistachio_tui.downloads`` against ``curl`` on the same loopback file.

A 200 MB file of random bytes (20 MB with ``--quick``) is served by aiohttp
(``FileResponse``, sendfile) from a child process. Pistachio's download
writes ``.part``, hashes every chunk with sha256, verifies and renames, as
it always does; curl only writes. Without curl, a plain httpx stream loop
is the yardstick.
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
    from pistachio_tui.downloads import download

    asyncio.run(download(url, target, sha256=sha, expected_size=size))


def curl_download(url: str, target: Path) -> None:
    subprocess.run(["curl", "-s", "-o", str(target), url], check=True)


def httpx_download(url: str, target: Path) -> None:
    import httpx

    with httpx.stream("GET", url, timeout=30) as response, target.open("wb") as out:
        for chunk in response.iter_bytes():
            out.write(chunk)


def run(args) -> list[Figure]:
    size = (20 if args.quick else 200) * MB
    curl = shutil.which("curl")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "source.bin"
        sha = make_file(source, size)
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(source)], stdout=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{int(server.stdout.readline())}/model.safetensors"
            ours, yard = [], []
            for n in range(RUNS + 1):
                target = folder / f"ours-{n}.safetensors"
                t_ours = timed(lambda: pistachio_download(url, target, sha, size))
                assert target.stat().st_size == size
                target.unlink()
                other = folder / f"yard-{n}.bin"
                t_yard = timed(lambda: curl_download(url, other) if curl else httpx_download(url, other))
                assert other.stat().st_size == size
                other.unlink()
                if n:  # the first round warms the page cache and the server
                    ours.append(t_ours)
                    yard.append(t_yard)
        finally:
            server.terminate()
            server.wait()
    mb = size / MB
    yardstick = "curl -s -o" if curl else "httpx stream loop"
    note = (f"{mb:.0f} MB over loopback, median of {RUNS}; ours includes sha256 and the rename"
            + ("" if curl else "; curl not found, so an httpx stream loop is the yardstick"))
    return [Figure("download speed", mb / statistics.median(ours), "MB/s", yardstick,
                   mb / statistics.median(yard), note=note)]


if __name__ == "__main__":
    raise SystemExit(bench_main(__doc__, run))
