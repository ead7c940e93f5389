"""The pod's footprint: image size, installed size of the runtime dependencies, and the resident memory of
``devops-crew serve`` after start and after 100 requests, beside the floor.

    .venv/bin/python bench/footprint.py [--requests 100] [--storage /var/tmp/devops-crew-vfs-XXX]

The floor is the same work done by the bare libraries: a FastAPI app with one ``/healthz`` route under
uvicorn, started the same way and sent the same number of requests. RSS is read from ``/proc/<pid>/status``
(VmRSS, the process and its threads). Targets (issue 13): under 400 MB RSS, and no growth per request after
the first 20 (the growth from request 20 to the last, per request, is printed; medians of five samples).
The image size needs a built image: ``--storage`` names a vfs storage root a build left (tests/test_image.py
removes its own; build with buildah into one to measure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-footprint-token-0123456789"
USERS = json.dumps({"bench": {"roles": ["viewer"], "token": TOKEN}})

FLOOR_APP = textwrap.dedent(
    """
    import sys, uvicorn
    from fastapi import FastAPI
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    original = server.startup
    async def startup(sockets=None):
        await original(sockets)
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"serving at http://127.0.0.1:{port}", file=sys.stderr, flush=True)
    server.startup = startup
    server.run()
    """
)


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (VmRSS)."""
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


def start(command: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert process.stderr is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if "serving at " in line:
            return process, line.split("serving at ", 1)[1].split()[0]
        if not line and process.poll() is not None:
            break
    process.kill()
    raise SystemExit(f"{command} did not start")


def measure(command: list[str], env: dict[str, str], paths: list[str], requests: int) -> dict[str, float]:
    process, url = start(command, env)
    try:
        time.sleep(1.0)
        samples: dict[str, float] = {"start": rss_mib(process.pid)}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=url, timeout=30) as client:
            for n in range(1, requests + 1):
                client.get(paths[n % len(paths)], headers=headers).raise_for_status()
                if n == 20:
                    samples["after_20"] = rss_mib(process.pid)
        samples["after_all"] = rss_mib(process.pid)
        samples["growth_kib_per_request"] = (samples["after_all"] - samples["after_20"]) * 1024 / max(requests - 20, 1)
        return samples
    finally:
        process.terminate()
        try:
            process.wait(40)
        except subprocess.TimeoutExpired:
            process.kill()


def installed_mib(constraints: Path) -> tuple[float, int]:
    """Bytes on disk of every distribution pinned in ``constraints`` that is installed here, in MiB."""
    total, count = 0, 0
    for line in constraints.read_text().splitlines():
        name = line.split("==", 1)[0].strip()
        if not name or name.startswith("#"):
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        count += 1
        for file in dist.files or []:
            path = Path(dist.locate_file(file))
            if path.is_file():
                total += path.stat().st_size
    return total / 2**20, count


def image_size(storage: str | None) -> str:
    if not storage:
        return "not measured (pass --storage with the vfs root of a build)"
    result = subprocess.run(
        ["podman", "--storage-driver", "vfs", "--root", f"{storage}/root", "--runroot", f"{storage}/runroot",
         "images", "--format", "{{.Repository}}:{{.Tag}} {{.Size}}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return result.stdout.strip() or result.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--storage", help="vfs storage root holding a built localhost/devops-crew image")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="devops-crew-bench-footprint-"))
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVOPS_CREW_", "GITHUB_", "OPENAI_"))}
    env = base_env | {
        "DEVOPS_CREW_HOME": str(home),
        "DEVOPS_CREW_FORGE": "fake",
        "DEVOPS_CREW_WEB_USERS": USERS,
        "DEVOPS_CREW_SESSION_SECRET": "bench-session-secret-0123456789",
    }
    product_cmd = [sys.executable, "-m", "devops_automation.cli", "serve", "--port", "0"]
    floor_cmd = [sys.executable, "-c", FLOOR_APP]
    product_paths = ["/healthz", "/readyz", "/api/v1/requests", "/.well-known/agent-card.json"]
    runs = {"product": [], "floor": []}  # type: dict[str, list[dict[str, float]]]
    for _ in range(args.runs):
        runs["product"].append(measure(product_cmd, env, product_paths, args.requests))
        runs["floor"].append(measure(floor_cmd, base_env, ["/healthz"], args.requests))
    mib, count = installed_mib(ROOT / "constraints.txt")
    print(f"image: {image_size(args.storage)}")
    print(f"runtime dependencies installed (constraints.txt, {count} distributions): {mib:.0f} MiB")
    print(f"{'':28}{'start MiB':>12}{'after 20':>12}{f'after {args.requests}':>12}{'KiB/req 20+':>14}")
    for label, samples in (("devops-crew serve", runs["product"]), ("floor: FastAPI+uvicorn", runs["floor"])):
        med = {key: statistics.median(s[key] for s in samples) for key in samples[0]}
        print(
            f"{label:28}{med['start']:>12.1f}{med['after_20']:>12.1f}{med['after_all']:>12.1f}"
            f"{med['growth_kib_per_request']:>14.1f}"
        )
    print("targets: under 400 MiB RSS; no growth per request after the first 20")


if __name__ == "__main__":
    main()
