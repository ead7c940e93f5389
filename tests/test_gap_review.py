"""The scheduled gap review: sources, grouping by skill, de-duplication against the registry, open
requests and earlier sightings, priority order through the rate limiter, and one runner at a time."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from devops_automation.authz import Actor, Channel, Role
from devops_automation.errors import PermissionDenied
from devops_automation.store import open_store

from .helpers import service_for
from .server_fixtures import A2A_CALLERS, bearer, running_server, server_settings
from .test_cli import run

CRON = Actor(id="cronjob", channel=Channel.scheduler, roles=frozenset({Role.operator}))
CREW = Actor(id="analytics", channel=Channel.a2a, roles=frozenset({Role.requester, Role.viewer}))
OPS = Actor(id="oscar", channel=Channel.web, roles=frozenset({Role.operator, Role.approver, Role.viewer}))


def _tasks(service, skill: str, n: int, *, urgency: str = "medium", extra: list[str] | None = None) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        service.add_task(CREW, {"summary": f"{skill} job {i}", "skills": [skill, *(extra or [])], "urgency": urgency})


def _by_label(view: dict) -> dict[str, dict]:
    return {c["label"]: c for c in view["candidates"]}


def test_tasks_grouped_by_skill_over_the_threshold_become_one_request_each(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    _tasks(service, "d3.js", 3, extra=["svg"])
    _tasks(service, "erlang", 2)  # below the threshold of 3
    view = service.review_gaps(CRON, drive=True)
    [candidate] = view["candidates"]
    assert candidate["skills"] == ["d3.js", "svg"] and candidate["tasks_waiting"] == 3
    assert candidate["outcome"] == "submitted"
    [run_view] = view["runs"]
    assert run_view["state"] == "published" and run_view["requester"]["channel"] == "scheduler"
    placed = {t["skills"][0] for t in service.list_tasks(OPS)}
    assert placed == {"erlang"}  # the d3 tasks are placed on the request
    again = service.review_gaps(CRON)
    assert again["candidates"] == [] and again["submitted"] == []
    # more of the same skill: the open request already answers it
    _tasks(service, "d3.js", 3, extra=["svg"])
    third = service.review_gaps(CRON)
    assert [c["outcome"] for c in third["candidates"]] == ["duplicate"]
    assert third["candidates"][0]["request_id"] == run_view["id"]


def test_what_the_registry_covers_is_placed_on_the_team_not_submitted(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    _tasks(service, "ticket triage", 4, extra=["customer communication"])
    view = service.review_gaps(CRON)
    [candidate] = view["candidates"]
    assert candidate["outcome"] == "covered" and candidate["team"]
    assert view["submitted"] == [] and service.list_tasks(OPS) == []


def test_a_review_in_the_cooldown_says_the_cooldown_defers_it(tmp_path: Path) -> None:
    """One new team of five used today, the cooldown running: the candidate is deferred by the cooldown,
    and the review says so (not "rate limit")."""
    service = service_for(tmp_path, rate_limit_per_day=5, cooldown_seconds=300)
    _tasks(service, "rust", 3, urgency="critical")
    assert service.review_gaps(CRON, drive=True)["submitted"]
    _tasks(service, "kotlin", 3, urgency="high")
    view = service.review_gaps(CRON)
    [kotlin] = [c for c in view["candidates"] if c["skills"][0] == "kotlin"]
    assert kotlin["outcome"] == "deferred" and kotlin["detail"].startswith("cooldown: the next new team in ")
    assert view["free_slots"] == 0


def test_priority_order_through_the_rate_limit_and_no_duplicates(tmp_path: Path) -> None:
    service = service_for(tmp_path, rate_limit_per_day=2, cooldown_seconds=0)
    _tasks(service, "cobol", 3, urgency="low")
    _tasks(service, "fortran", 5, urgency="medium")
    _tasks(service, "kotlin", 3, urgency="medium")
    _tasks(service, "rust", 3, urgency="critical")
    view = service.review_gaps(CRON, drive=True)
    order = [c["skills"][0] for c in view["candidates"]]
    assert order == ["rust", "fortran", "kotlin", "cobol"]  # urgency, then tasks waiting, then age
    outcomes = {c["skills"][0]: c["outcome"] for c in view["candidates"]}
    assert outcomes == {"rust": "submitted", "fortran": "submitted", "kotlin": "deferred", "cobol": "deferred"}
    assert view["free_slots"] == 2
    why = {c["skills"][0]: c["detail"] for c in view["candidates"] if c["outcome"] == "deferred"}
    assert why["kotlin"] == "rate limit: 0 new team(s) in the last 24 h and 2 on the way, of 2"
    second = service.review_gaps(CRON, drive=True)
    assert second["submitted"] == [] and {c["outcome"] for c in second["candidates"]} == {"deferred"}
    requests = service.list(OPS, limit=50)
    assert len(requests) == 2 and all(r["state"] == "published" for r in requests)


def test_a_broken_source_is_named_and_skipped_and_the_others_run(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "good.yaml").write_text(
        "- description: The telecom switch needs an Erlang team\n  required_skills: [erlang]\n"
        "  urgency: high\n  tasks_waiting: 9\n"
    )
    (reports / "good.json").write_text(
        json.dumps({"description": "Mainframe jobs need COBOL", "required_skills": ["cobol"]})
    )
    (reports / "broken.yaml").write_text("description: [unclosed\n")
    (reports / "hostile.yaml").write_text("description: x\nrequired_skills: ['../../etc']\n")
    (reports / "notes.txt").write_text("ignored: not a report")
    (reports / "link.yaml").symlink_to(reports / "good.yaml")
    service = service_for(tmp_path, gap_reports_dir=reports, cooldown_seconds=0)
    _tasks(service, "d3.js", 3)
    view = service.review_gaps(CRON, drive=False)
    by_name = {s["name"]: s for s in view["sources"]}
    directory = by_name[f"reports:{reports}"]
    assert directory["reports"] == 2
    problems = {p["where"]: p["problem"] for p in directory["problems"]}
    assert set(problems) == {"broken.yaml", "hostile.yaml"}
    assert "not valid YAML" in problems["broken.yaml"] and "required_skills" in problems["hostile.yaml"]
    assert by_name["unassigned-tasks"]["tasks"] == 3
    assert sorted(c["skills"][0] for c in view["candidates"]) == ["cobol", "d3.js", "erlang"]
    assert view["candidates"][0]["skills"] == ["erlang"]  # high urgency first
    assert len(view["submitted"]) == 3

    missing = service_for(tmp_path / "m", gap_reports_dir=tmp_path / "nowhere").review_gaps(CRON)
    assert "cannot list the directory" in missing["sources"][1]["problems"][0]["problem"]


def test_a_team_reviewers_rejected_is_not_proposed_again_by_the_review(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    _tasks(service, "d3.js", 3)
    first = service.review_gaps(CRON, drive=True)["runs"][0]
    service.app.forge.close_pull_request(first["pull_request"]["number"])
    service.track(OPS)
    _tasks(service, "d3.js", 4)
    view = service.review_gaps(CRON, drive=True)
    assert [c["outcome"] for c in view["candidates"]] == ["previously-rejected"]
    assert view["submitted"] == []


def test_a_withdrawn_request_for_the_same_skills_does_not_stop_the_review(tmp_path: Path) -> None:
    from devops_automation.models import CapabilityGap

    service = service_for(tmp_path, monthly_cost_ceiling_usd=1)
    mine = service.submit(CREW, CapabilityGap(description="We need d3.js charts", required_skills=["d3.js"]))
    assert mine["state"] == "awaiting_approval"
    assert service.reject(CREW, mine["id"])["state"] == "rejected"  # the crew takes its own request back
    _tasks(service, "d3.js", 3)
    view = service.review_gaps(CRON, drive=True)
    assert [c["outcome"] for c in view["candidates"]] != ["previously-rejected"], view["candidates"]
    assert len(view["submitted"]) == 1  # a withdrawal is no verdict on the skills


def test_sightings_count_across_reviews(tmp_path: Path) -> None:
    service = service_for(tmp_path, rate_limit_per_day=0)
    _tasks(service, "zig", 3)
    for _ in range(3):
        service.review_gaps(CRON)
    from devops_automation.gapreview.tasks import TaskStore
    from devops_automation.models import skills_key

    [sighting] = TaskStore(service.store).sightings([skills_key(["zig"])]).values()
    assert sighting["times_seen"] == 3 and sighting["request_id"] is None


def test_only_operators_and_the_scheduler_review_and_only_one_runs_at_a_time(tmp_path: Path) -> None:
    service = service_for(tmp_path)
    with pytest.raises(PermissionDenied):
        service.review_gaps(CREW)
    assert service.store.try_lease("gap-review", "other-replica", 60)
    assert service.review_gaps(CRON) == {"skipped": "another process is running the gap review"}
    service.store.release_lease("gap-review", "other-replica")
    assert "candidates" in service.review_gaps(CRON)


def test_lease_is_exclusive_across_processes_and_expires(db_url: str) -> None:
    stores = [open_store(db_url) for _ in range(4)]
    won: list[int] = []
    barrier = threading.Barrier(4)

    def take(n: int) -> None:
        barrier.wait()
        if stores[n].try_lease("gap-review", f"holder-{n}", 60):
            won.append(n)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    winner = won[0]
    assert stores[winner].try_lease("gap-review", f"holder-{winner}", 60)  # renewal
    other = (winner + 1) % 4
    assert not stores[other].try_lease("gap-review", f"holder-{other}", 60)
    stores[winner].try_lease("gap-review", f"holder-{winner}", -1)  # expired at once
    assert stores[other].try_lease("gap-review", f"holder-{other}", 60)
    for s in stores:
        s.close()


def test_tasks_and_review_over_the_json_api(tmp_path: Path) -> None:
    with running_server(server_settings(tmp_path / "home", cooldown_seconds=0)) as server, server.client() as c:
        for i in range(3):
            made = c.post(
                "/api/v1/tasks",
                json={"summary": f"chart {i}", "skills": ["d3.js"], "source": "someone_else"},
                headers={"Authorization": f"Bearer {A2A_CALLERS['billing_ops']}"},
            )
            assert made.status_code == 201, made.text
            assert made.json()["task"]["source"] == "billing_ops"  # an A2A caller files for itself only
        bad = c.post("/api/v1/tasks", json={"summary": "x", "skills": []}, headers=bearer("alice"))
        assert bad.status_code == 422
        misspelt = c.post(
            "/api/v1/tasks", json={"summary": "x", "skills": ["go"], "team": "a"}, headers=bearer("alice")
        )
        assert misspelt.status_code == 422 and "team" in misspelt.json()["error"]["message"]
        denied = c.post("/api/v1/review-gaps", headers=bearer("alice"))
        assert denied.status_code == 403
        review = c.post("/api/v1/review-gaps", headers=bearer("oscar"))
        assert review.status_code == 200, review.text
        [request_id] = review.json()["submitted"]
        from .server_fixtures import wait_for_state

        wait_for_state(c, request_id, {"published"})
        feed = c.get("/api/v1/notifications", headers=bearer("vic")).json()["notifications"]
        assert [e["kind"] for e in feed] == ["pr_opened"] and feed[0]["request_id"] == request_id
        for i in range(3):
            c.post("/api/v1/tasks", json={"summary": f"app {i}", "skills": ["kotlin"]}, headers=bearer("alice"))
        recorded = c.post("/api/v1/review-gaps", params={"run": "false"}, headers=bearer("oscar"))
        [only_recorded] = recorded.json()["submitted"]  # review-gaps --no-run through a server
        time.sleep(1.0)
        shown = c.get(f"/api/v1/requests/{only_recorded}", headers=bearer("vic")).json()["request"]
        assert shown["state"] == "received"


def test_review_gaps_cli_json_and_text(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"DEVOPS_CREW_FORGE": "fake", "DEVOPS_CREW_VALIDATE_RENDER": "false"}
    for i in range(3):
        assert run(home, "task", "add", f"chart {i}", "--skill", "d3.js", **env).returncode == 0
    bad = run(home, "task", "add", "no skills", **env)
    assert bad.returncode != 0 and "--skill" in bad.stderr and "Traceback" not in bad.stderr
    listed = json.loads(run(home, "task", "list", "--json", **env).stdout)
    assert len(listed["tasks"]) == 3
    done = run(home, "review-gaps", "--json", "-q", **env)
    assert done.returncode == 0, done.stderr
    view = json.loads(done.stdout)
    assert view["outcomes"] == {"submitted": 1} and view["runs"][0]["state"] == "published"
    text = run(home, "review-gaps", **env).stdout
    assert "0 candidates" in text or "nothing to review" in text


def test_two_replicas_reviewing_on_an_interval_submit_each_gap_once(tmp_path: Path, pg_url: str) -> None:
    import time

    from .server_fixtures import wait_for_state

    def settings(name: str):  # type: ignore[no-untyped-def]
        return server_settings(tmp_path / name, database_url=pg_url, review_interval_seconds=0.2, cooldown_seconds=0)

    with running_server(settings("a")) as a, running_server(settings("b")) as b, a.client() as c:
        for i in range(3):
            c.post("/api/v1/tasks", json={"summary": f"chart {i}", "skills": ["d3.js"]}, headers=bearer("alice"))
        deadline = time.monotonic() + 60
        while not (listed := c.get("/api/v1/requests", headers=bearer("vic")).json()["requests"]):
            assert time.monotonic() < deadline, "no replica reviewed"
            time.sleep(0.1)
        wait_for_state(c, listed[0]["id"], {"published"})
        time.sleep(1.5)  # several more intervals on both replicas
        with b.client() as other:
            seen = other.get("/api/v1/requests", headers=bearer("vic")).json()["requests"]
        assert len(seen) == 1
        runs = [
            r
            for r in a.runtime.service.audit(OPS.model_copy(update={"roles": frozenset({Role.admin})}), limit=1000)
            if r["action"] == "review.run"
        ]
        assert len(runs) >= 4  # both replicas kept reviewing; only the first found anything
