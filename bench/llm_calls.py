"""LLM calls and tokens per request: the pipeline's crew against a naive sequential crew.

    .venv/bin/python bench/llm_calls.py --gaps 10

Both run against the same OpenAI-compatible stub on 127.0.0.1 (``tests/crew/openai_stub.py``: a
rule-based model that answers every request correctly the first time; tokens estimated at four
characters a token over messages, tool schemas and response format) through the real provider path
(ChatOpenAI via the CrewAI adapter).

- optimized: the pipeline, gap to pull request on the embedded forge. The crew runs at the LLM steps
  only (gap analyst and team architect, PR author); registry matching, rendering, validation and
  pushing are code or tool results taken as the answer.
- naive: the same four agents as one sequential CrewAI crew (``DevopsCrew(naive=True).crew()``):
  every tool result goes back to the model, the schema is in the prompt, each task reads all earlier
  outputs. Its publish tool runs dry (the comparison is about the model's work).

Target (issue 4): at most 4 LLM calls on the happy path and under 12,000 tokens per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the stub lives with the tests

from devops_automation.quiet import isolate_crewai  # noqa: E402

TARGET_CALLS, TARGET_TOKENS = 4, 12_000
GAPS = [
    ("8 tasks need interactive d3.js charts for the quarterly dashboards", ["d3.js", "data visualization"]),
    ("Mobile releases stall: nobody builds the iOS and Android apps", ["swift", "kotlin"]),
    ("Contracts wait weeks for a legal review before signature", ["contract review", "gdpr"]),
    ("Marketing campaigns go out without search-optimised copy", ["seo", "copywriting"]),
    ("Kafka consumers lag and nobody owns the streaming jobs", ["kafka", "stream processing"]),
    ("Screening job candidates takes the hiring managers days", ["candidate screening", "interview scheduling"]),
    ("Terraform drift breaks the staging environment every week", ["terraform", "infrastructure as code"]),
    ("Sales cannot generate quotes from the CRM without engineering help", ["salesforce", "quoting"]),
    ("Product research interviews are never synthesised into findings", ["user research", "synthesis"]),
    ("Vulnerability scanner findings pile up with no triage", ["vulnerability triage", "cve analysis"]),
    ("Warehouse stock counts drift from the system of record", ["inventory reconciliation", "logistics"]),
    ("Figma designs wait weeks to become React components", ["figma", "react"]),
]


def gaps(n: int) -> list:
    from devops_automation.models import CapabilityGap

    return [
        CapabilityGap(id=f"gap-bench-{i}", description=text, required_skills=skills)
        for i, (text, skills) in enumerate((GAPS * (n // len(GAPS) + 1))[:n])
    ]


def bench_settings(prefix: str, stub_url: str, api_key: str):
    from devops_automation.settings import Settings

    return Settings(
        _env_file=None,
        home=Path(tempfile.mkdtemp(prefix=prefix)),
        llm="openai/gpt-4o-mini",
        openai_api_key=api_key,
        openai_base_url=stub_url,
        rate_limit_per_day=1000,
        cooldown_seconds=0,
    )


def run_optimized(stub_url: str, api_key: str, todo: list) -> list[tuple[str, str, object]]:
    from devops_automation.app import build_app

    app = build_app(bench_settings("devops-crew-bench-llm-", stub_url, api_key))  # app.py wires the crew
    try:
        rows = []
        for gap in todo:
            request = app.engine.submit(gap).request
            rows.append((gap.id, request.state.value, request.llm_usage))
        return rows
    finally:
        app.close()


def run_naive(stub_url: str, api_key: str, todo: list) -> list[tuple[str, str, object]]:
    from devops_automation.app import build_app
    from devops_automation.crew import build_crew_components
    from devops_automation.crew.components import naive_inputs
    from devops_automation.crew.crew import DevopsCrew
    from devops_automation.drafting.offline import OfflineDrafter

    settings = bench_settings("devops-crew-bench-naive-", stub_url, api_key)
    app = build_app(settings, drafter=OfflineDrafter())
    try:
        runtime = build_crew_components(settings, app.auditor, app.target).drafter.runtime  # type: ignore[attr-defined]
        rows = []
        for gap in todo:
            context = runtime.context(gap, None)
            _, usage = runtime.kickoff(
                "naive",
                lambda llm, c=context: DevopsCrew(llm, c, naive=True).crew(),
                naive_inputs(runtime, gap),
                context,
            )
            rows.append((gap.id, "validated" if context.last_spec else "not validated", usage))
        return rows
    finally:
        app.close()


def report(title: str, rows: list[tuple[str, str, object]]) -> tuple[int, int]:
    print(f"\n{title}")
    print(f"  {'gap':<14} {'outcome':<14} {'calls':>5} {'prompt':>7} {'compl.':>7} {'total':>7} {'USD':>9}")
    for gap_id, outcome, usage in rows:
        total = usage.prompt_tokens + usage.completion_tokens
        print(
            f"  {gap_id:<14} {outcome:<14} {usage.calls:>5} {usage.prompt_tokens:>7} "
            f"{usage.completion_tokens:>7} {total:>7} {usage.cost_usd:>9.5f}"
        )
    calls = [u.calls for _, _, u in rows]
    totals = [u.prompt_tokens + u.completion_tokens for _, _, u in rows]
    print(
        f"  per request: calls median {statistics.median(calls):g} max {max(calls)}; "
        f"tokens median {statistics.median(totals):g} max {max(totals)}"
    )
    return max(calls), max(totals)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gaps", type=int, default=10)
    args = parser.parse_args()
    isolate_crewai(Path(tempfile.mkdtemp(prefix="devops-crew-bench-crewai-")))
    from tests.crew.openai_stub import API_KEY, OpenAIStub

    todo = gaps(args.gaps)
    with OpenAIStub() as stub:
        optimized = run_optimized(stub.base_url, API_KEY, todo)
    with OpenAIStub() as stub:
        naive = run_naive(stub.base_url, API_KEY, todo)
    print("LLM calls and tokens per request (OpenAI-compatible stub, tokens ~ characters / 4)")
    calls, tokens = report("optimized: the pipeline's crew (gap to pull request)", optimized)
    naive_calls, naive_tokens = report("naive: the same four agents, one sequential crew", naive)
    met = calls <= TARGET_CALLS and tokens < TARGET_TOKENS
    print(
        f"\ntarget: <= {TARGET_CALLS} calls and < {TARGET_TOKENS:,} tokens per request: "
        f"{'met' if met else 'MISSED'} (optimized max {calls} calls, {tokens:,} tokens; "
        f"naive max {naive_calls} calls, {naive_tokens:,} tokens)"
    )
    not_published = [g for g, outcome, _ in optimized if outcome != "published"]
    if not_published:
        print(f"not published: {', '.join(not_published)}")
    return 0 if met and not not_published else 1


if __name__ == "__main__":
    sys.exit(main())
