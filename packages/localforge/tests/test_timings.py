"""Round-trip times through PyGithub (its client-side throttle off), recorded for the run's summary."""

from __future__ import annotations

import statistics
import time

from conftest import REPO, TIMINGS, ForgeUnderTest, Pusher, make_github

GET_PULL_TARGET_SECONDS = 0.020


def test_round_trip_times(forge: ForgeUnderTest, push: Pusher) -> None:
    repo = make_github(forge).get_repo(REPO)
    shas = [push(f"staging/t{i}", {f"teams/t{i}/team.yaml": f"name: t{i}\n"}) for i in range(8)]

    publish: list[float] = []
    numbers = []
    for i, sha in enumerate(shas):
        started = time.perf_counter()
        repo.create_git_ref(f"refs/heads/auto/t{i}", sha)
        pr = repo.create_pull(base="main", head=f"auto/t{i}", title=f"Add team t{i}", body="Generated.")
        pr.add_to_labels("new-team", "automated")
        publish.append(time.perf_counter() - started)
        numbers.append(pr.number)

    get_pull: list[float] = []
    for _ in range(5):  # warm-up: connection and caches
        repo.get_pull(numbers[0])
    for i in range(60):
        started = time.perf_counter()
        pr = repo.get_pull(numbers[i % len(numbers)])
        get_pull.append(time.perf_counter() - started)
        assert pr.mergeable is True

    TIMINGS["get_pull median"] = statistics.median(get_pull)
    TIMINGS["get_pull p90"] = statistics.quantiles(get_pull, n=10)[-1]
    TIMINGS["create ref + create PR + labels median"] = statistics.median(publish)
    server = [
        ex.seconds
        for ex in forge.exchanges
        if ex.route == "/repos/{owner}/{repo}/pulls/{pull_number}" and ex.method == "GET"
    ]
    TIMINGS["get_pull server-side median"] = statistics.median(server)
    assert statistics.median(get_pull) < GET_PULL_TARGET_SECONDS, TIMINGS
