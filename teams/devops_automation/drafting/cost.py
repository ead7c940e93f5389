"""Model prices, and the documented monthly cost formula for a proposed team (README: "Cost estimate").

    compute = replicas x 730 h x (cpu_cores x CPU_HOUR + memory_GiB x GIB_HOUR)
    llm     = agents x RUNS_PER_DAY x 30 days
              x (PROMPT_TOKENS_PER_RUN x prompt price + COMPLETION_TOKENS_PER_RUN x completion price) / 1e6
    monthly = round(compute + llm, 2)

The price table is the one the whole application uses: the team estimate here, and the cost of a
request's own LLM calls (``Settings.llm_price``). ``DEVOPS_CREW_LLM_PRICES`` adds or overrides entries.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..models import Resources

HOURS_PER_MONTH = 730
CPU_HOUR_USD = 0.0316  # on-demand vCPU-hour, typical cloud list price
GIB_HOUR_USD = 0.0042  # GiB-hour of memory
RUNS_PER_DAY = 40
PROMPT_TOKENS_PER_RUN = 1_200
COMPLETION_TOKENS_PER_RUN = 300

# USD per million (prompt, completion) tokens, the providers' list prices.
DEFAULT_LLM_PRICES: dict[str, tuple[float, float]] = {
    "openai/gpt-4o-mini": (0.15, 0.60),
    "openai/gpt-4o": (2.50, 10.00),
    "openai/gpt-4.1": (2.00, 8.00),
    "openai/gpt-4.1-mini": (0.40, 1.60),
    "openai/gpt-4.1-nano": (0.10, 0.40),
}
# Used for a model missing from the table: deliberately pessimistic, so an estimate errs high.
UNKNOWN_LLM_PRICE = (5.00, 15.00)


def price_for(model: str, prices: Mapping[str, tuple[float, float]] = DEFAULT_LLM_PRICES) -> tuple[float, float]:
    """USD per million (prompt, completion) tokens for ``model`` (``openai/`` prefix optional)."""
    for key in (model, f"openai/{model}", model.removeprefix("openai/")):
        if key in prices:
            return prices[key]
    return UNKNOWN_LLM_PRICE


def monthly_cost(
    resources: Resources,
    agent_count: int,
    llm_model: str,
    prices: Mapping[str, tuple[float, float]] = DEFAULT_LLM_PRICES,
) -> float:
    compute = (
        resources.replicas
        * HOURS_PER_MONTH
        * (resources.cpu_millicores / 1000 * CPU_HOUR_USD + resources.memory_mib / 1024 * GIB_HOUR_USD)
    )
    prompt, completion = price_for(llm_model, prices)
    per_run = (PROMPT_TOKENS_PER_RUN * prompt + COMPLETION_TOKENS_PER_RUN * completion) / 1_000_000
    llm = agent_count * RUNS_PER_DAY * 30 * per_run
    return round(compute + llm, 2)
