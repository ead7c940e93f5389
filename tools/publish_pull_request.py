"""``publish_pull_request``: the PR author's tool. Makes sure the approved branch carries the rendered
team (committing and pushing it if it does not yet) and hands the title and summary to the pipeline,
which opens the pull request inside its fixed body.

The model chooses the words, never the ref or the files. It is not asked for the branch (code knows it;
a tiny model asked to echo it dropped its timestamp, issue 15): left out, the approved one is used. A branch
it names all the same must be the approved
``auto/team-<name>-<timestamp>-<id>`` (``policy.check_branch``), the files are the ones the pipeline
rendered and approved (``policy.check_paths`` again here), and ``TargetRepo.publish_branch`` checks
both once more next to the push. With ``dry_run`` (the benchmark's naive crew) nothing is pushed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from devops_automation import policy
from devops_automation.crew.prompts import quote
from devops_automation.policy import PolicyViolation
from devops_automation.target import commit_message

from .context import ContextTool


class PublishPullRequestArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch: str | None = Field(
        None,
        max_length=200,
        description="leave out: the approved branch is known and used (a different one is refused)",
    )
    title: str = Field(min_length=1, max_length=200, description="the pull request title, one line")
    summary: str = Field("", max_length=4000, description="what the team does and why, in Markdown")


class PublishPullRequestTool(ContextTool):
    name: str = "publish_pull_request"
    description: str = (
        "Publish the rendered team on its auto/ branch and submit the pull request's title and summary. Call it once."
    )
    args_schema: type[BaseModel] = PublishPullRequestArgs
    dry_run: bool = False

    def _run(self, title: str, summary: str = "", branch: str | None = None) -> str:
        ctx = self.ctx
        team = ctx.team_name or (ctx.last_spec.name if ctx.last_spec else None)
        wanted = branch or ctx.branch or (policy.branch_name(team) if team else "")
        with ctx.auditor.action(
            "tool.publish_pull_request", wanted[:200], request_id=ctx.request_id, dry_run=self.dry_run
        ) as call:
            bare = policy.check_branch(wanted)
            if team is None:
                raise PolicyViolation("branch", "nothing was rendered and approved for publishing")
            if ctx.branch is not None and bare != ctx.branch:
                raise PolicyViolation("branch", f"only the approved branch {ctx.branch} may be published")
            if not bare.startswith(f"{policy.BRANCH_PREFIX}team-{team}-"):
                raise PolicyViolation("branch", f"branch {bare!r} does not belong to team {team!r}")
            files = ctx.files or (ctx.last_render.files if ctx.last_render else [])
            root = ctx.rendered_root or (ctx.last_render.root if ctx.last_render else None)
            files = policy.check_paths(files, team)
            if not files or root is None:
                raise PolicyViolation("path-allow-list", "there are no rendered files to publish")
            commit = None
            if not self.dry_run:
                if ctx.request_id is None:
                    raise PolicyViolation("branch", "only a tracked request may be published")
                commit = ctx.target.publish_branch(
                    request_id=ctx.request_id,
                    team_name=team,
                    branch=bare,
                    rendered_root=root,
                    files=files,
                    message=commit_message(team, ctx.gap.id, ctx.request_id),
                ).commit
            call.result.update(commit=commit, files=len(files))
        return quote(
            {
                "published": not self.dry_run,
                "branch": bare,
                "commit": commit,
                "files": len(files),
                "title": title,
                "summary": summary,
            }
        )
