"""The crew's image really builds and runs: buildah builds the Dockerfile, podman runs it, read-only.

No Docker engine and no registry of base images are reachable here, so the base is made locally: Debian
bookworm (minbase) by ``mmdebstrap`` with python3, python3-venv, git and ca-certificates, plus this
machine's CA bundle and a pip.conf that uses it (pip inside the build reaches PyPI through the same TLS
proxy the host does). The Dockerfile takes that base as ``BASE``; its default is the official Python image.

Cached across runs in ``$DEVOPS_CREW_IMAGE_CACHE`` (default ``~/.cache/devops-crew/image``): the base tarball
and buildah's cache mounts (pip's downloads). The vfs storage copies every layer in full (gigabytes): it
lives in a temporary directory that is removed afterwards.

The container runs as the image's non-root user with a read-only root, state on a tmpfs: ``--help``, then
``serve`` answers ``/healthz`` and ``/readyz`` and takes the demo's new-team gap through the JSON API to a
validated pull request on the embedded forge (built in with ``WITH_LOCALFORGE=true``), then stops on SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from devops_automation.demo import SAMPLE_GAPS

from .server_fixtures import bearer, web_users_json

pytestmark = [pytest.mark.slow, pytest.mark.image]

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("DEVOPS_CREW_IMAGE_CACHE") or Path.home() / ".cache" / "devops-crew" / "image")
BASE_TAG = "localhost/devops-crew-base:bookworm"
IMAGE_TAG = "localhost/devops-crew:test"
BASE_PACKAGES = "python3,python3-venv,git,ca-certificates"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = ("buildah", "podman", "mmdebstrap", "runc")


@dataclass
class Storage:
    """One vfs container storage shared by buildah and podman."""

    root: Path
    runroot: Path

    def flags(self) -> list[str]:
        return ["--storage-driver", "vfs", "--root", str(self.root), "--runroot", str(self.runroot)]

    def env(self) -> dict[str, str]:
        # buildah keeps RUN --mount=type=cache directories under $TMPDIR: in the cache, so they persist.
        (CACHE / "tmp").mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(CACHE / "tmp")}

    def buildah(self, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["buildah", *self.flags(), *args], capture_output=True, text=True, timeout=timeout, env=self.env()
        )
        assert result.returncode == 0, f"buildah {args[0]}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result

    def podman(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = ["podman", *self.flags(), "--cgroup-manager=cgroupfs", "--runtime", "runc"]
        command += ["--events-backend", "file", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=self.env())
        if check:
            assert result.returncode == 0, f"podman {args[0]}: {result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        return result


def local_base_context() -> Path:
    """The build context of the local base: the mmdebstrap tarball (made once), CA bundle, pip.conf."""
    context = CACHE / "base"
    context.mkdir(parents=True, exist_ok=True)
    tarball = context / "base.tar"
    if not tarball.is_file():
        partial = context / "base-partial.tar"  # mmdebstrap picks the format from the .tar suffix
        result = subprocess.run(
            ["mmdebstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", "bookworm", str(partial)],
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        partial.rename(tarball)
    shutil.copyfile(HOST_CA_BUNDLE, context / "ca-certificates.crt")
    (context / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n", encoding="utf-8")
    (context / "Containerfile").write_text(
        "FROM scratch\nADD base.tar /\n"
        "COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\nCOPY pip.conf /etc/pip.conf\n",
        encoding="utf-8",
    )
    return context


@pytest.fixture(scope="module")
def storage() -> Iterator[Storage]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed: scripts/test installs them with apt-get")
    top = Path(tempfile.mkdtemp(prefix="devops-crew-vfs-", dir="/var/tmp"))
    made = Storage(top / "root", top / "runroot")
    try:
        yield made
    finally:
        made.podman("rm", "--all", "--force", check=False)
        subprocess.run(["buildah", *made.flags(), "rm", "--all"], capture_output=True, timeout=300)
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="module")
def image(storage: Storage) -> str:
    storage.buildah("bud", "--isolation", "chroot", "-t", BASE_TAG, str(local_base_context()))
    storage.buildah(
        "bud",
        "--isolation",
        "chroot",
        "--format",
        "docker",  # keeps HEALTHCHECK (the OCI format has none)
        "--build-arg",
        f"BASE={BASE_TAG}",
        "--build-arg",
        "WITH_LOCALFORGE=true",
        "-t",
        IMAGE_TAG,
        str(ROOT),
    )
    return IMAGE_TAG


def run_flags(state: Path) -> list[str]:
    """As the Deployment runs it: the image's user, a read-only root, /tmp on tmpfs and the state directory on
    a volume the user owns (the pod's emptyDir with fsGroup), no capabilities. podman's default open-files
    and processes limits exceed what this machine allows a container: lower ones are set."""
    state.mkdir(parents=True, exist_ok=True)
    os.chown(state, 10001, 10001)
    return [
        "--read-only",
        "--tmpfs",
        "/tmp:rw,mode=1777,size=512m",
        "--volume",
        f"{state}:/var/lib/devops-crew:rw",
        "--ulimit",
        "nofile=4096:4096",
        "--ulimit",
        "nproc=4096:4096",
        "--network",
        "host",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_image_is_configured_as_the_pod_expects(storage: Storage, image: str) -> None:
    info = json.loads(storage.podman("image", "inspect", image).stdout)[0]
    config = info["Config"]
    assert config["Entrypoint"] == ["devops-crew"]
    assert config["Cmd"] == ["serve"]
    assert config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert "/var/lib/devops-crew" in config["Volumes"]
    healthcheck = info.get("Healthcheck") or config.get("Healthcheck") or {}
    assert healthcheck.get("Test", [""])[0] == "CMD", info.keys()


PROBE = (
    "import os, subprocess, localforge\n"
    "print(os.getuid(), os.getgid())\n"
    "try:\n    open('/opt/devops-crew/x', 'w')\nexcept OSError as e:\n    print('readonly', e.errno)\n"
    "print(subprocess.run(['git', '--version'], capture_output=True, text=True).stdout.strip())\n"
)


def test_the_container_serves_runs_the_demo_gap_to_a_pr_and_stops_on_sigterm(storage: Storage, image: str) -> None:
    """One container (vfs copies the whole image for each): ``--help`` and a probe of the user, the
    read-only root and git run inside it with ``podman exec``, then the server's own work."""
    port, forge_port = free_port(), free_port()
    name = f"devops-crew-test-{port}"
    env = {
        "DEVOPS_CREW_SERVER_HOST": "127.0.0.1",
        "DEVOPS_CREW_SERVER_PORT": str(port),
        "DEVOPS_CREW_FORGE_PORT": str(forge_port),
        "DEVOPS_CREW_WEB_USERS": web_users_json(),
        "DEVOPS_CREW_SESSION_SECRET": "image-test-session-secret-0123456789",
        "DEVOPS_CREW_SHUTDOWN_GRACE_SECONDS": "20",
    }
    env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
    storage.podman("run", "--detach", "--name", name, *run_flags(storage.root.parent / "state"), *env_flags, image)
    try:
        helped = storage.podman("exec", name, "devops-crew", "--help")
        assert "serve" in helped.stdout and "request" in helped.stdout
        lines = storage.podman("exec", name, "python3", "-c", PROBE).stdout.splitlines()
        assert lines[0] == "10001 10001"  # the image's non-root user
        assert lines[1] == "readonly 30"  # EROFS: the root file system is read-only
        assert lines[2].startswith("git version 2.")
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 180
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                running = storage.podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
                assert running == "true", storage.podman("logs", name, check=False).stderr[-3000:]
                assert time.monotonic() < deadline, storage.podman("logs", name, check=False).stderr[-3000:]
                time.sleep(0.5)
            assert client.get("/healthz").json()["status"] == "ok"
            gap = SAMPLE_GAPS[0]  # the demo's new-team gap
            posted = client.post("/api/v1/requests", json=gap.model_dump(mode="json"), headers=bearer("alice"))
            assert posted.status_code == 202, posted.text
            rid = posted.json()["request"]["id"]
            deadline = time.monotonic() + 600
            while (view := client.get(f"/api/v1/requests/{rid}", headers=bearer("vic")).json()["request"])[
                "state"
            ] not in {"published", "failed", "refused"}:
                assert time.monotonic() < deadline, view
                time.sleep(1)
            assert view["state"] == "published", view["error"]
            assert view["pull_request"] and view["files"] > 5
            assert client.get("/api/v1/audit/verify", headers=bearer("oscar")).json()["ok"] is True
        # SIGTERM: the server drains and exits 0 within its grace period.
        started = time.monotonic()
        storage.podman("stop", "--time", "40", name)
        assert time.monotonic() - started < 30
        state = json.loads(storage.podman("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, storage.podman("logs", name, check=False).stderr[-3000:]
    finally:
        storage.podman("rm", "--force", name, check=False)
