"""Gap sources behind one small interface: each reads what it has and reports, by name, what it could
not parse; one failing source (or file) never stops the others."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import validation_fields
from ..models import CapabilityGap, Skill, Text, Urgency
from ..store import utc
from .tasks import TaskStore

MAX_REPORT_BYTES = 1024 * 1024
REPORT_SUFFIXES = (".yaml", ".yml", ".json")
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TaskInput(BaseModel):
    """An unassigned task as a caller sends it (``task add``, ``POST /api/v1/tasks``): untrusted, checked
    here before it is stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    source: Text = Field(min_length=1, max_length=100)
    summary: Text = Field(min_length=1, max_length=500)
    skills: list[Skill] = Field(min_length=1, max_length=20)
    urgency: Urgency = Urgency.medium


@dataclass(frozen=True, slots=True)
class Task:
    """An unassigned task as the review reads it back (validated as :class:`TaskInput` when stored)."""

    id: str
    source: str
    summary: str
    skills: list[str]
    urgency: Urgency
    created_at: datetime


class GapReport(BaseModel):
    """One gap a crew reported in a file: the gap itself and how many tasks wait for it."""

    gap: CapabilityGap
    tasks_waiting: int = Field(1, ge=1)
    seen_at: datetime
    origin: str


@dataclass
class SourceRead:
    """What one source gave: ``problems`` are ``(where, what)`` for each part it skipped."""

    name: str
    tasks: list[Task] = field(default_factory=list)
    reports: list[GapReport] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


class GapSource(Protocol):
    name: str

    def read(self) -> SourceRead:
        """Everything the source holds now. Never raises: what fails is in ``problems``."""


class ReportDirectory:
    """A directory of gap reports: each ``*.yaml``/``*.yml``/``*.json`` file (regular files only, no
    symlinks, at most 1 MiB) holds one gap or a list of gaps, in the fields of ``request --json``'s
    gap plus an optional ``tasks_waiting``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = f"reports:{path}"

    def read(self) -> SourceRead:
        result = SourceRead(self.name)
        try:
            entries = sorted(self.path.iterdir())
        except OSError as exc:
            result.problems.append((str(self.path), f"cannot list the directory: {exc.strerror or exc}"))
            return result
        for file in entries:
            if file.suffix.lower() not in REPORT_SUFFIXES or file.is_symlink() or not file.is_file():
                continue
            try:
                result.reports.extend(self._read_file(file))
            except ReportError as exc:
                result.problems.append((file.name, str(exc)))
        return result

    def _read_file(self, file: Path) -> list[GapReport]:
        if file.stat().st_size > MAX_REPORT_BYTES:
            raise ReportError(f"larger than {MAX_REPORT_BYTES} bytes")
        text = file.read_text(encoding="utf-8", errors="strict")
        try:
            data = json.loads(text) if file.suffix.lower() == ".json" else yaml.load(text, Loader=_Loader)  # noqa: S506 - safe loader
        except (ValueError, yaml.YAMLError) as exc:
            raise ReportError(
                f"not valid {file.suffix.lstrip('.').upper()}: {' '.join(str(exc).split())[:200]}"
            ) from None
        items = data if isinstance(data, list) else [data]
        seen_at = datetime.fromtimestamp(file.stat().st_mtime, UTC)
        reports = []
        for number, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise ReportError(f"gap {number} is not a mapping")
            fields = dict(item)
            waiting = fields.pop("tasks_waiting", None)
            try:
                gap = CapabilityGap.model_validate(fields)
                report = GapReport(
                    gap=gap,
                    tasks_waiting=waiting or max(len(gap.affected_tasks), 1),
                    seen_at=seen_at,
                    origin=f"{file.name}#{number}",
                )
            except ValidationError as exc:
                raise ReportError(f"gap {number}: invalid {validation_fields(exc)}") from None
            reports.append(report)
        return reports


class ReportError(Exception):
    """A gap report file that cannot be used (the message says why, without a traceback)."""


class UnassignedTasks:
    """The store's table of unassigned tasks (``devops-crew task add``, ``POST /api/v1/tasks``)."""

    def __init__(self, tasks: TaskStore) -> None:
        self.tasks = tasks
        self.name = "unassigned-tasks"

    def read(self) -> SourceRead:
        result = SourceRead(self.name)
        try:
            rows = self.tasks.open_tasks()
        except Exception as exc:  # a broken table is reported, the reports directory still runs
            result.problems.append(("unassigned_tasks", f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"))
            return result
        for task_id, source, summary, skills, urgency, created_at in rows:
            # Validated when written (the service's add_task); only the enum is rebuilt here.
            try:
                result.tasks.append(Task(task_id, source, summary, list(skills), Urgency(urgency), utc(created_at)))
            except (ValueError, TypeError) as exc:
                result.problems.append((str(task_id), f"unreadable row: {exc}"))
        return result


def read_all(sources: Iterable[GapSource]) -> list[SourceRead]:
    """Every source's read, in order."""
    return [source.read() for source in sources]
