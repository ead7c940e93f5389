"""The embedded stand-in for GitHub: bare repositories plus a server speaking GitHub's REST shape.

``LocalForge`` (see :mod:`.forge`) is the entry point. The modules, each with one job:

- :mod:`.forge`: the facade (repositories, users, teams, server life cycle, faults, observers);
- :mod:`.server`: HTTP parsing, authentication, rate-limit headers, dispatch, observers;
- :mod:`.routing`: routes, request/response values, errors, pagination;
- :mod:`.api`: the REST endpoints and the GitHub behaviours they keep;
- :mod:`.ci_api`: the endpoints for commit statuses, check runs and branch protection (mixed into the API);
- :mod:`.rules`: GitHub's rules: combined status, required checks, permissions, protected-branch updates;
- :mod:`.payloads` and :mod:`.ci_payloads`: JSON bodies in GitHub's shapes, every URL built from the
  forge's own base;
- :mod:`.state`: the forge's own SQLite database (GitHub's side of the world, not the app's store);
- :mod:`.ci`: its companion tables for statuses, check runs, branch protections and forge admins;
- :mod:`.gitrepo`: refs, commits, diffs and server-side merges in bare repositories;
- :mod:`.githttp`: git's smart HTTP (clone, fetch, push) through ``git http-backend``;
- :mod:`.pushhook`: git's ``proc-receive`` hook that makes smart-HTTP pushes respect protected branches;
- :mod:`.faults`: injected failures (502, 403 secondary rate limit with ``Retry-After``, 429, ...).
"""

from .forge import LocalForge
from .server import Exchange

__all__ = ["Exchange", "LocalForge"]
