"""The Discord bot's overhead on a command: ``!team status <id>`` and ``!team pending`` through the bot
(discord.py's command dispatch, with dpytest standing in for Discord's servers), beside their floors
in the same run:

- ``bare discord.py``: a prefix command that answers with one embed (the same dpytest path, no service);
- ``bare service``: ``CrewService.get`` / ``list`` called directly (the store read the bot makes).

    .venv/bin/python bench/discord_bot.py --runs 50

Prints medians in milliseconds. The bot's number is about the sum of both floors plus one hop to a
thread and back.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import discord
import discord.ext.test as dpytest
from discord.ext import commands

from devops_automation.authz import Actor, Channel, Role
from devops_automation.discord_bot import DiscordBot
from devops_automation.service import CrewService
from devops_automation.settings import Settings

VIEWER = Actor(id="bench", channel=Channel.cli, roles=frozenset({Role.viewer, Role.requester}))


async def _median_ms(runs: int, step: Callable[[], Awaitable[Any]]) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await step()
        times.append((time.perf_counter() - start) * 1000)
        await dpytest.empty_queue()
    return statistics.median(times)


async def _configure(bot: commands.Bot) -> Any:
    await bot._async_setup_hook()
    dpytest.configure(bot, members=["ann"])
    return dpytest.get_config()


async def bench(runs: int, home: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        home=home,
        forge="fake",
        validate_render=False,
        cooldown_seconds=0,
        rate_limit_per_day=1000,
        monthly_cost_ceiling_usd=5,
    )
    with CrewService(settings) as service:
        rid = service.submit(VIEWER, {"description": "Nobody can build kotlin apps", "required_skills": ["kotlin"]})[
            "id"
        ]

        bare = commands.Bot(command_prefix="!", intents=discord.Intents.all())

        @bare.command(name="status")
        async def status(ctx: commands.Context[Any], request_id: str) -> None:
            await ctx.send(embed=discord.Embed(title=f"{request_id}: awaiting_approval"))

        config = await _configure(bare)
        floor_discord = await _median_ms(runs, lambda: dpytest.message(f"!status {rid}", member=config.members[0]))
        bare.ws = None  # dpytest's gateway has no socket to close
        await bare.close()

        floor_get = await _median_ms(runs, lambda: asyncio.to_thread(service.get, VIEWER, rid))
        floor_list = await _median_ms(
            runs, lambda: asyncio.to_thread(lambda: service.list(VIEWER, limit=10, states={"awaiting_approval"}))
        )

        bot = DiscordBot(settings, service, sync_commands=False)
        config = await _configure(bot)
        await bot.setup_hook()
        member = config.members[0]
        product_status = await _median_ms(runs, lambda: dpytest.message(f"!team status {rid}", member=member))
        product_pending = await _median_ms(runs, lambda: dpytest.message("!team pending", member=member))
        bot.ws = None
        await bot.close()

    print(f"median of {runs} runs, ms")
    print(
        f"  !team status <id>   bot {product_status:7.2f}   floor: bare discord.py {floor_discord:6.2f}"
        f" + bare service.get {floor_get:6.2f}"
    )
    print(
        f"  !team pending       bot {product_pending:7.2f}   floor: bare discord.py {floor_discord:6.2f}"
        f" + bare service.list {floor_list:6.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="devops-crew-bench-discord-"))
    try:
        asyncio.run(bench(args.runs, home / "home"))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
