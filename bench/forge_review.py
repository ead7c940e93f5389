"""A reviewer's reads on the local forge, beside the floor: the same work by the bare tools in the same run.

    .venv/bin/python bench/forge_review.py --runs 20

For a pull request of 15 files, prints the median of: its diff (``Accept: application/vnd.github.diff``)
against ``git diff`` run directly; its web page (Markdown body, every file's diff, checks, reviews) against
markdown-it rendering the body plus ``git diff``; a review (``POST /reviews``, APPROVE) against one SQLite
insert; and ``GET /commits?per_page=30`` against ``git rev-list`` plus ``git log`` of 30 commits.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from markdown_it import MarkdownIt

from localforge import LocalForge

TOKEN = "bench-token-0123456789"
REVIEWER = "bench-reviewer-token-0123"
REPO = "acme/teams"
GIT_ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
}
BODY = "## Summary\n\nA **new** team.\n\n| agent | goal |\n| --- | --- |\n| `lead` | leads |\n" * 5


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True).stdout


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="devops-crew-bench-review-"))
    try:
        seed = root / "seed"
        seed.mkdir()
        (seed / "README.md").write_text("# Teams\n")
        with LocalForge(root / "forge", token=TOKEN) as forge:
            forge.add_user("rita", token=REVIEWER)
            bare = forge.create_repo(REPO, seed_from=seed)
            work = root / "work"
            _git("clone", "--quiet", str(bare), str(work))
            for n in range(40):  # history for the commit list
                (work / "history.txt").write_text(f"{n}\n")
                _git("add", "history.txt", cwd=work)
                _git("commit", "--quiet", "-m", f"history {n}", cwd=work)
            _git("push", "--quiet", "origin", "HEAD:main", cwd=work)
            _git("checkout", "--quiet", "-b", "auto/team-bench", cwd=work)
            for n in range(15):
                path = work / "teams" / "bench" / f"file_{n}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("".join(f"line_{i} = {i}\n" for i in range(40)))
            _git("add", "-A", cwd=work)
            _git("commit", "--quiet", "-m", "Add team bench", cwd=work)
            _git("push", "--quiet", "origin", "auto/team-bench", cwd=work)
            session = requests.Session()
            session.headers["Authorization"] = f"token {TOKEN}"
            api = f"{forge.base_url}/repos/{REPO}"
            number = session.post(
                f"{api}/pulls", json={"title": "Bench", "head": "auto/team-bench", "base": "main", "body": BODY}
            ).json()["number"]
            page_url = f"{forge.web_url}/{REPO}/pull/{number}"
            as_rita = requests.Session()
            as_rita.headers["Authorization"] = f"token {REVIEWER}"
            md = MarkdownIt("commonmark", {"html": False}).enable("table")
            db = sqlite3.connect(root / "floor.sqlite3", isolation_level=None)
            db.execute("CREATE TABLE reviews (id INTEGER PRIMARY KEY, body TEXT, state TEXT)")

            def diff_floor() -> None:
                _git("--git-dir", str(bare), "diff", "main...auto/team-bench")

            rows = [
                (
                    "pull request diff",
                    lambda: session.get(f"{api}/pulls/{number}", headers={"Accept": "application/vnd.github.diff"}),
                    diff_floor,
                ),
                ("pull request page", lambda: session.get(page_url), lambda: (md.render(BODY), diff_floor())),
                (
                    "review (APPROVE)",
                    lambda: as_rita.post(f"{api}/pulls/{number}/reviews", json={"event": "APPROVE", "body": "ok"}),
                    lambda: db.execute("INSERT INTO reviews (body, state) VALUES ('ok', 'APPROVED')"),
                ),
                (
                    "list 30 commits",
                    lambda: session.get(f"{api}/commits", params={"per_page": 30}),
                    lambda: (
                        _git("--git-dir", str(bare), "rev-list", "main"),
                        _git("--git-dir", str(bare), "log", "-30", "--format=%H%n%T%n%P%n%an%n%ae%n%B", "main"),
                    ),
                ),
            ]
            for name, product, floor in rows:
                product()  # warm caches on both sides, outside the timing
                floor()
                print(
                    f"review: {name}: median {_median_ms(product, args.runs):.1f} ms "
                    f"(floor, the bare tools: {_median_ms(floor, args.runs):.1f} ms) over {args.runs} runs"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
