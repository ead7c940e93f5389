// A reviewer's session against the local forge with Octokit (@octokit/rest), as someone would script it
// against GitHub. The crew (the author's token) protects main and opens two pull requests, one a draft;
// the reviewer lists, reads, diffs, comments, labels, requests and removes a reviewer; the author may not
// approve their own work; nothing merges before an approval and CI; then it merges, and the reviewer
// compares, lists commits and deletes the branch. Prints one JSON object of what it saw.
import { Octokit } from "@octokit/rest";

const env = process.env;
const repo = { owner: env.LF_OWNER, repo: env.LF_REPO };
const author = new Octokit({ auth: env.LF_AUTHOR_TOKEN, baseUrl: env.LF_API });
const reviewer = new Octokit({ auth: env.LF_REVIEWER_TOKEN, baseUrl: env.LF_API });
const out = {};

async function refused(call) {
  try {
    await call;
    return null;
  } catch (error) {
    return { status: error.status, message: error.response?.data?.message, errors: error.response?.data?.errors };
  }
}

await author.rest.repos.updateBranchProtection({
  ...repo,
  branch: "main",
  required_status_checks: { strict: false, contexts: ["ci"] },
  enforce_admins: true,
  required_pull_request_reviews: { required_approving_review_count: 1, dismiss_stale_reviews: true },
  restrictions: null,
});
const draft = (
  await author.rest.pulls.create({ ...repo, title: "Risky team", head: env.LF_DRAFT, base: "main", draft: true })
).data;
const pr = (
  await author.rest.pulls.create({ ...repo, title: "Add a team", head: env.LF_FEATURE, base: "main", body: "Adds it." })
).data;
const pull = { ...repo, pull_number: pr.number };

out.repos = (await reviewer.paginate(reviewer.rest.repos.listForAuthenticatedUser, { per_page: 1 })).map(
  (r) => r.full_name,
);
out.org_repos = (await reviewer.rest.repos.listForOrg({ org: env.LF_OWNER })).data.map((r) => r.full_name);
out.open_pulls = (await reviewer.rest.pulls.list({ ...repo, state: "open" })).data.map((p) => [p.number, p.draft]);
out.mergeable_state = (await reviewer.rest.pulls.get(pull)).data.mergeable_state;
out.diff = (await reviewer.rest.pulls.get({ ...pull, mediaType: { format: "diff" } })).data;
out.patch = (await reviewer.rest.pulls.get({ ...pull, mediaType: { format: "patch" } })).data;
out.files = (await reviewer.rest.pulls.listFiles(pull)).data.map((f) => f.filename);
out.self_approval = await refused(author.rest.pulls.createReview({ ...pull, event: "APPROVE" }));
await reviewer.rest.issues.createComment({ ...repo, issue_number: pr.number, body: "Looking at it." });
out.labels = (await reviewer.rest.issues.addLabels({ ...repo, issue_number: pr.number, labels: ["reviewed"] })).data.map(
  (l) => l.name,
);
await reviewer.rest.pulls.requestReviewers({ ...pull, reviewers: ["bob"] });
out.requested = (await reviewer.rest.pulls.listRequestedReviewers(pull)).data.users.map((u) => u.login);
await reviewer.rest.pulls.removeRequestedReviewers({ ...pull, reviewers: ["bob"] });
out.requested_after = (await reviewer.rest.pulls.listRequestedReviewers(pull)).data.users.map((u) => u.login);
out.draft_merge = await refused(author.rest.pulls.merge({ ...repo, pull_number: draft.number }));
out.unreviewed_merge = await refused(author.rest.pulls.merge(pull));
out.review = (await reviewer.rest.pulls.createReview({ ...pull, event: "APPROVE", body: "Looks right." })).data.state;
out.reviews = (await reviewer.rest.pulls.listReviews(pull)).data.map((r) => [r.user.login, r.state]);
out.unchecked_merge = await refused(author.rest.pulls.merge(pull));
await author.rest.repos.createCommitStatus({ ...repo, sha: pr.head.sha, state: "success", context: "ci" });
const merged = (await author.rest.pulls.merge({ ...pull, sha: pr.head.sha, merge_method: "merge" })).data;
out.merged = [merged.merged, merged.sha];
const compared = (
  await reviewer.rest.repos.compareCommitsWithBasehead({ ...repo, basehead: `main...${env.LF_DRAFT}` })
).data;
out.compare = [compared.status, compared.ahead_by, compared.behind_by];
out.commits = (await reviewer.paginate(reviewer.rest.repos.listCommits, { ...repo, sha: "main", per_page: 2 })).map(
  (c) => c.sha,
);
out.pull_commits = (await reviewer.rest.pulls.listCommits(pull)).data.map((c) => c.sha);
out.commit_files = (await reviewer.rest.repos.getCommit({ ...repo, ref: pr.head.sha })).data.files.map((f) => f.filename);
out.check_suites = (await reviewer.rest.checks.listSuitesForRef({ ...repo, ref: "main" })).data.total_count;
await reviewer.rest.git.deleteRef({ ...repo, ref: `heads/${env.LF_FEATURE}` });
out.branches = (await reviewer.rest.repos.listBranches(repo)).data.map((b) => b.name);
console.log(JSON.stringify(out));
