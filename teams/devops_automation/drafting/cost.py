"""The documented monthly cost formula for a proposed team (README: "Cost estimate").

compute = replicas x 730 h x (cpu_cores x CPU_HOUR + memory_GiB x GIB_HOUR)
llm     = agents x RUNS_PER_DAY x 30 days x TOKENS_PER_RUN / 1e6 x price_per_million(model)
monthly = round(compute + llm, 2)
"""

from __future__ import annotations

from ..models import Resources

HOURS_PER_MONTH = 730
CPU_HOUR_USD = 0.0316  # on-demand vCPU-hour, typical cloud list price
GIB_HOUR_USD = 0.0042  # GiB-hour of memory
RUNS_PER_DAY = 40
TOKENS_PER_RUN = 1_500
# Blended (input+output) USD per million tokens. Unknown models use DEFAULT_PRICE.
PRICE_PER_MILLION_TOKENS = {
    "openai/gpt-4o-mini": 0.30,
    "openai/gpt-4o": 5.00,
    "openai/gpt-4.1-mini": 0.80,
}
DEFAULT_PRICE = 1.00


def monthly_cost(resources: Resources, agent_count: int, llm_model: str) -> float:
    compute = (
        resources.replicas
        * HOURS_PER_MONTH
        * (resources.cpu_millicores / 1000 * CPU_HOUR_USD + resources.memory_mib / 1024 * GIB_HOUR_USD)
    )
    price = PRICE_PER_MILLION_TOKENS.get(llm_model, DEFAULT_PRICE)
    llm = agent_count * RUNS_PER_DAY * 30 * TOKENS_PER_RUN / 1_000_000 * price
    return round(compute + llm, 2)
