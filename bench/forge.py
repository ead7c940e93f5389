"""Local forge round trips through the product's own client code (GitPython + PyGithub).

    .venv/bin/python bench/forge.py --runs 20

Prints the median of (create branch + push 15 files + open PR + labels) and of a PyGithub
``get_pull`` round trip. Targets (issue 3): under 300 ms and under 20 ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from devops_automation.audit import Auditor
from devops_automation.forge.base import PRContent, http_token_env
from devops_automation.forge.github import GitHubForge
from devops_automation.policy import branch_name
from devops_automation.registry import SEED_DIR
from devops_automation.settings import Settings
from devops_automation.store import open_store
from devops_automation.target import TargetRepo
from localforge import LocalForge

TOKEN = "bench-token-0123456789"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="devops-crew-bench-forge-"))
    try:
        with LocalForge(root / "forge", token=TOKEN) as local:
            local.create_repo("local/teams", seed_from=SEED_DIR)
            settings = Settings(_env_file=None, home=root / "home")
            settings.home.mkdir()
            auditor = Auditor(open_store(settings.effective_database_url), [TOKEN])
            target = TargetRepo(settings, auditor, f"{local.web_url}/local/teams.git", http_token_env(TOKEN))
            forge = GitHubForge(local.base_url, TOKEN, "local/teams", throttle=False)
            target.team_files()  # first clone, outside the timing
            publish, get_pull = [], []
            for i in range(args.runs):
                name = f"bench_team_{i}"
                render = root / "render" / name
                files = [f"teams/{name}/file_{n}.txt" for n in range(12)] + [
                    f"k8s/teams/{name}/{k}.yaml" for k in ("deployment", "service", "kustomization")
                ]
                for rel in files:
                    (render / rel).parent.mkdir(parents=True, exist_ok=True)
                    (render / rel).write_text(f"{rel}\n")
                branch = branch_name(name)
                start = time.perf_counter()
                target.publish_branch(
                    request_id=f"req-bench{i}",
                    team_name=name,
                    branch=branch,
                    rendered_root=render,
                    files=files,
                    message=f"bench {i} req-bench{i}",
                )
                pr = forge.ensure_pull_request(
                    head=branch,
                    base="main",
                    compose=lambda i=i: PRContent(title=f"bench {i}", body="bench"),
                    labels=["automated", "new-team", "needs-review", "risk:low"],
                )
                publish.append(time.perf_counter() - start)
                start = time.perf_counter()
                forge.get_pull_request(pr.number)
                get_pull.append(time.perf_counter() - start)
            forge.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"forge: branch + push 15 files + PR + labels: median {statistics.median(publish) * 1000:.0f} ms "
        f"over {args.runs} runs (target < 300 ms)"
    )
    print(f"forge: PyGithub get_pull round trip: median {statistics.median(get_pull) * 1000:.1f} ms (target < 20 ms)")


if __name__ == "__main__":
    main()
