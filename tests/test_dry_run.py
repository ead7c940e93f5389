"""`request --dry-run`: the real analyse, draft, gate and scaffold steps with validation, the diff that
would be pushed, and nothing else: no request, branch, pull request, rate-limit slot or notification;
one audit row that it ran."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from devops_automation import tables
from devops_automation.authz import Actor, Channel, Role

from .helpers import NEW_TEAM_GAP, service_for
from .notify_fixtures import webhook_server
from .server_fixtures import bearer, running_server, server_settings

ALICE = Actor(id="alice", channel=Channel.web, roles=frozenset({Role.requester, Role.viewer}))
ROOT = Actor(id="root", channel=Channel.cli, roles=frozenset({Role.admin}))


def _count(service, table) -> int:  # type: ignore[no-untyped-def]
    with service.store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_dry_run_shows_the_diff_and_writes_nothing_but_one_audit_row(tmp_path: Path) -> None:
    with webhook_server() as hook:
        service = service_for(tmp_path, validate_render=True, rate_limit_per_day=1, notify_discord_webhook=hook.url)
        view = service.dry_run(ALICE, NEW_TEAM_GAP)
        assert view["dry_run"] is True and view["outcome"] == "scaffolded" and view["invalid"] == []
        team = view["request"]["team"]
        diff = view["diff"]
        assert f"diff --git a/teams/{team}/team.yaml b/teams/{team}/team.yaml" in diff
        assert "new file mode 100644" in diff and "--- /dev/null" in diff
        assert diff.count("diff --git") == view["request"]["files"] > 5
        assert all(
            line.split()[2].removeprefix("a/").startswith((f"teams/{team}/", f"k8s/teams/{team}/"))
            for line in diff.splitlines()
            if line.startswith("diff --git")
        )
        assert any(a.startswith("policy.approved") for a in view["would_audit"])

        assert _count(service, tables.requests) == 0
        assert _count(service, tables.rate_ledger) == 0
        assert _count(service, tables.notifications) == 0 and hook.posts == []
        heads = service.app.forge.git("for-each-ref", "--format=%(refname)", "refs/heads")  # type: ignore[attr-defined]
        assert heads.split() == ["refs/heads/main"]
        actions = [r["action"] for r in service.audit(ROOT, limit=100) if not r["action"].startswith("git.")]
        assert actions == ["request.dry_run"]
        assert not any((service.settings.home / "renders").iterdir())

        # the slot is still there for the real request
        assert service.submit(ALICE, NEW_TEAM_GAP)["state"] == "published"
        # and now the dry run tells the truth about the limit
        again = service.dry_run(ALICE, NEW_TEAM_GAP.model_copy(update={"id": "gap-d3-2", "proposed_name": "charts"}))
        assert again["outcome"] == "refused" and again["request"]["decision"]["rule"] in {"rate-limit", "existing-team"}
        assert again["diff"] == ""


def test_dry_run_of_a_covered_gap_and_of_an_expensive_one(tmp_path: Path) -> None:
    service = service_for(tmp_path, monthly_cost_ceiling_usd=1)
    waiting = service.dry_run(ALICE, NEW_TEAM_GAP)
    assert waiting["outcome"] == "awaiting_approval"
    assert waiting["request"]["decision"]["rule"] == "cost-ceiling"
    remedy = waiting["request"]["decision"]["remedy"]  # no id of a request nothing stored
    assert "devops-crew approve ID`" in remedy and "req-" not in remedy and waiting["request"]["id"] not in remedy
    assert "diff --git" in waiting["diff"]  # what it would push once approved
    assert _count(service, tables.requests) == 0


def test_dry_run_over_the_json_api(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home")) as server, server.client() as c:
        gap = NEW_TEAM_GAP.model_dump(mode="json")
        assert c.post("/api/v1/requests/dry-run", json=gap).status_code == 401
        answer = c.post("/api/v1/requests/dry-run", json=gap, headers=bearer("alice"))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["schema"] == 1 and body["outcome"] == "scaffolded" and "diff --git" in body["diff"]
        denied = c.post("/api/v1/requests/dry-run", json=gap, headers=bearer("vic"))  # a viewer may not submit
        assert denied.status_code == 403
        listed = c.get("/api/v1/requests", headers=bearer("vic")).json()["requests"]
        assert listed == []
