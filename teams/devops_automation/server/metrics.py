"""Prometheus metrics of one server process (prometheus-client, a private registry per application).

- ``devops_crew_requests{state}``: requests in each state, read from the store at scrape time (one
  grouped query), so every replica reports the same truth;
- ``devops_crew_pull_requests_opened_total``, ``devops_crew_policy_refusals_total{rule}``,
  ``devops_crew_llm_calls_total``, ``devops_crew_llm_tokens_total{kind}``, ``devops_crew_llm_cost_usd_total``:
  counted by this process as its runs go (Prometheus sums replicas);
- ``devops_crew_step_duration_seconds{step,outcome}``: a histogram per engine step;
- ``devops_crew_worker_jobs{status}``: jobs running and queued on the worker pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..models import LLMUsage, RequestState, TeamCreationRequest

STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StoreCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]], jobs: Callable[[], tuple[int, int]]) -> None:
        self._counts, self._jobs = counts, jobs

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("devops_crew_requests", "Requests in each state (from the store)", labels=["state"])
        yield GaugeMetricFamily("devops_crew_worker_jobs", "Jobs on this process's worker pool", labels=["status"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("devops_crew_requests", "Requests in each state (from the store)", labels=["state"])
        try:
            counts = self._counts()
        except Exception:  # the store is down: /readyz says so; the scrape still answers
            counts = None
        if counts is not None:
            for state in RequestState:
                family.add_metric([state.value], counts.get(state.value, 0))
        yield family
        running, queued = self._jobs()
        jobs = GaugeMetricFamily("devops_crew_worker_jobs", "Jobs on this process's worker pool", labels=["status"])
        jobs.add_metric(["running"], running)
        jobs.add_metric(["queued"], max(0, queued - running))
        yield jobs


class Metrics:
    """The metrics of one application. ``counts`` reads requests by state; ``jobs`` returns (running,
    accepted) of the worker pool. :meth:`on_step` is the engine's step observer."""

    def __init__(self, counts: Callable[[], dict[str, int]], jobs: Callable[[], tuple[int, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(_StoreCollector(counts, jobs))
        self.prs_opened = Counter(
            "devops_crew_pull_requests_opened", "Pull requests the crew opened", registry=self.registry
        )
        self.refusals = Counter(
            "devops_crew_policy_refusals", "Policy refusals by rule", ["rule"], registry=self.registry
        )
        self.llm_calls = Counter("devops_crew_llm_calls", "Calls to the language model", registry=self.registry)
        self.llm_tokens = Counter(
            "devops_crew_llm_tokens", "Language model tokens by kind", ["kind"], registry=self.registry
        )
        self.llm_cost = Counter("devops_crew_llm_cost_usd", "Language model cost in USD", registry=self.registry)
        self.steps = Histogram(
            "devops_crew_step_duration_seconds",
            "Engine step durations",
            ["step", "outcome"],
            buckets=STEP_BUCKETS,
            registry=self.registry,
        )

    def on_step(self, step: str, seconds: float, request: TeamCreationRequest, spent: LLMUsage) -> None:
        """The engine's :data:`~devops_automation.engine.StepObserver` (called from worker threads)."""
        self.steps.labels(step=step, outcome=request.state.value).observe(seconds)
        if step == RequestState.scaffolded.value and request.state is RequestState.published:
            self.prs_opened.inc()
        if request.state is RequestState.refused and request.decision is not None:
            self.refusals.labels(rule=request.decision.rule or "unknown").inc()
        if spent.calls > 0:
            self.llm_calls.inc(spent.calls)
        if spent.prompt_tokens > 0:
            self.llm_tokens.labels(kind="prompt").inc(spent.prompt_tokens)
        if spent.completion_tokens > 0:
            self.llm_tokens.labels(kind="completion").inc(spent.completion_tokens)
        if spent.cost_usd > 0:
            self.llm_cost.inc(spent.cost_usd)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
