"""The simplest honest forge: pull requests recorded in the state store and written as Markdown
under ``$DEVOPS_CREW_HOME/pulls/`` for a human to read. One per head branch, enforced by the store."""

from __future__ import annotations

from pathlib import Path

from ..models import PullRequestRef
from ..store import Store


class StoreForge:
    label = "embedded forge (state store)"

    def __init__(self, store: Store, repo: str, pulls_dir: Path) -> None:
        self.store, self.repo, self.pulls_dir = store, repo, pulls_dir

    def _ref(self, row: dict, created: bool) -> PullRequestRef:
        path = self.pulls_dir / f"{row['number']}.md"
        return PullRequestRef(number=row["number"], url=path.as_uri(), branch=row["head"], created=created)

    def find_pull_request(self, head: str) -> PullRequestRef | None:
        row = self.store.find_pull_request(self.repo, head)
        return self._ref(row, created=False) if row else None

    def open_pull_request(
        self, *, head: str, base: str, title: str, body: str, labels: list[str], draft: bool = False
    ) -> PullRequestRef:
        row, created = self.store.create_pull_request(
            repo=self.repo,
            head=head,
            base=base,
            title=title,
            body=body,
            labels=[*labels, "draft"] if draft else labels,
        )
        self.pulls_dir.mkdir(parents=True, exist_ok=True)
        path = self.pulls_dir / f"{row['number']}.md"
        if created or not path.exists():
            path.write_text(f"# {title}\n\n{head} -> {base}  \nlabels: {', '.join(row['labels'])}\n\n{body}\n")
        return self._ref(row, created)
