"""Reviewers for a new team's files, from the target repository's CODEOWNERS (last matching rule wins)."""

from __future__ import annotations

import fnmatch

from pydantic import BaseModel

CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


class Reviewers(BaseModel):
    users: list[str] = []
    teams: list[str] = []  # team slugs within the repository's organisation
    #: Whether the CODEOWNERS file came from the forge client's per-commit cache (no request was made): the
    #: audit row of the read says so.
    cached: bool = False


def _matches(pattern: str, path: str) -> bool:
    anchored = pattern.startswith("/")
    pattern = pattern.lstrip("/")
    if pattern.endswith("/"):
        pattern += "**"
    if pattern.endswith("/**"):
        prefix = pattern[:-3]
        return path.startswith(prefix + "/") if anchored or "/" in prefix else f"/{prefix}/" in f"/{path}"
    if anchored or "/" in pattern:
        return fnmatch.fnmatchcase(path, pattern) or path.startswith(pattern.rstrip("*") + "/")
    return any(fnmatch.fnmatchcase(part, pattern) for part in path.split("/"))


def reviewers_for(codeowners: str, paths: list[str], org: str) -> Reviewers:
    """Owners of ``paths``: ``@user`` become reviewers, ``@org/team`` team reviewers of ``org``."""
    rules = []
    for line in codeowners.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pattern, *owners = line.split()
            rules.append((pattern, owners))
    users: dict[str, None] = {}
    teams: dict[str, None] = {}
    for path in paths:
        owners = next((o for p, o in reversed(rules) if _matches(p, path)), [])
        for owner in owners:
            if owner.startswith("@") and "/" in owner:
                team_org, slug = owner[1:].split("/", 1)
                if team_org.lower() == org.lower():
                    teams[slug] = None
            elif owner.startswith("@"):
                users[owner[1:]] = None
    return Reviewers(users=list(users), teams=list(teams))
