"""A rule-based stand-in for a chat model, shared by the scripted ``crewai.BaseLLM`` and the HTTP stub.

It answers like a cooperative model would: it calls the tool it is offered with arguments read from
the prompt's data blocks, writes a TeamSpec when asked for one (the offline drafter's, so it is
realistic), and fixes the agents a validation error names. Knobs make it misbehave the way a model
that obeys a prompt injection would (a spec with a protected name or extra fields, a push to ``main``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from devops_automation.crew.prompts import read_block
from devops_automation.drafting.base import DraftContext
from devops_automation.drafting.offline import OfflineDrafter
from devops_automation.models import CapabilityGap

BRANCH = re.compile(r"auto/team-[a-z0-9_]+-\d{8}T\d{6}Z(?:-[0-9a-f]{6})?")


@dataclass
class Reply:
    """One assistant message: text, or tool calls as ``(name, arguments)``."""

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def approx_tokens(text: str) -> int:
    """About four characters a token (no tokenizer data is available offline)."""
    return math.ceil(len(text) / 4)


def message_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(str(content or ""))
    return "\n".join(parts)


@dataclass
class FakeModel:
    """The model's behaviour. Every reply is appended to ``log`` as ``(kind, detail)``."""

    #: Merged into every TeamSpec the model writes (e.g. ``{"name": "workflows"}``).
    spec_overrides: dict[str, Any] = field(default_factory=dict)
    #: Agents added to the first spec (to make a render fail a test validator).
    extra_agents: list[dict[str, Any]] = field(default_factory=list)
    #: Branches the PR author tries, in order, before the one the task names.
    publish_branches: list[str] = field(default_factory=list)
    #: Arguments merged into the publish call (e.g. hostile extras).
    publish_extra: dict[str, Any] = field(default_factory=dict)
    title: str = "Add team {name} for the reported gap"
    #: The summary the PR author submits (``{name}`` is the team's name).
    summary: str = "Adds **{name}** to close the gap."
    #: What the model says when it answers in prose instead of calling a tool.
    prose: str = "The gap looks real and significant to me; a new team would close it."
    log: list[tuple[str, Any]] = field(default_factory=list)

    def spec_for(self, gap: CapabilityGap) -> dict[str, Any]:
        spec = OfflineDrafter().build(gap, DraftContext()).model_dump(mode="json")
        spec["agents"] += [dict(a) for a in self.extra_agents]
        spec["tasks"] += [
            {"name": f"do_{a['role']}", "description": "Extra work.", "expected_output": "Done.", "agent": a["role"]}
            for a in self.extra_agents
        ]
        spec["monthly_cost_usd"] = 0
        spec.update(self.spec_overrides)
        return spec

    def reply(self, messages: list[dict[str, Any]], tools: list[str], schema: str | None) -> Reply:
        text = message_text(messages)
        gap_data = read_block(text, "gap")
        gap = CapabilityGap.model_validate(gap_data) if gap_data else None
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            return self._after_tool(last, text, tools)
        if schema == "TeamSpec":
            assert gap is not None, "a TeamSpec was asked for without a <gap> block"
            spec = self.spec_for(gap)
            self.log.append(("spec", spec))
            return Reply(content=json.dumps(spec))
        if "registry_lookup" in tools:
            args = {
                "skills": list(gap.required_skills) if gap else [],
                "significant": True,
                "assessment": "Real: several tasks are blocked and no team has these skills.",
            }
            return self._call("registry_lookup", args)
        if "scaffold_team" in tools:
            spec = read_block(text, "spec") or (self.spec_for(gap) if gap else {})
            errors = read_block(text, "errors") or []
            return self._call("scaffold_team", {"spec": fix_spec(spec, errors)})
        if "publish_pull_request" in tools:
            return self._publish(text, attempt=0)
        return Reply(content="Nothing to do.")

    def _call(self, name: str, args: dict[str, Any]) -> Reply:
        self.log.append(("tool_call", (name, args)))
        return Reply(tool_calls=[(name, args)])

    def _publish(self, text: str, attempt: int) -> Reply:
        named = BRANCH.search(text)
        branches = [*self.publish_branches, named.group(0) if named else None]
        branch = branches[min(attempt, len(branches) - 1)]
        team = read_block(text, "team") or {}
        args = {
            "title": self.title.format(name=team.get("name", "new team")),
            "summary": self.summary.format(name=team.get("name", "a new team")),
            **({"branch": branch} if branch else {}),
            **self.publish_extra,
        }
        return self._call("publish_pull_request", args)

    def _after_tool(self, last: dict[str, Any], text: str, tools: list[str]) -> Reply:
        content = str(last.get("content", ""))
        tried = sum(1 for kind, detail in self.log if kind == "tool_call" and detail[0] == "publish_pull_request")
        if "publish_pull_request" in tools and "error" in content.lower() and tried < 3:
            return self._publish(text, attempt=tried)
        self.log.append(("final", content[:200]))
        return Reply(content=f"Done. The tool said: {content[:300]}")


def fix_spec(spec: dict[str, Any], errors: list[str]) -> dict[str, Any]:
    """Drop every non-manager agent (and its tasks) that an error names: a plausible repair."""
    if not errors:
        return spec
    named = {
        a["role"] for a in spec.get("agents", []) if not a.get("is_manager") and any(a["role"] in e for e in errors)
    }
    fixed = dict(spec)
    fixed["agents"] = [a for a in spec.get("agents", []) if a["role"] not in named]
    fixed["tasks"] = [t for t in spec.get("tasks", []) if t["agent"] not in named]
    return fixed
