"""Who is calling: bearer tokens (A2A callers and JSON API scripts) and dashboard logins, each turned
into an :class:`~devops_automation.authz.Actor`. Authorisation (what that actor may do) stays in
:mod:`devops_automation.authz`.

- A2A: ``DEVOPS_CREW_A2A_TOKENS`` (``team:token,...``). The caller is the team, on channel ``a2a``, with
  the roles of a requesting crew (``requester``, ``viewer``): it may submit gaps and read requests, never
  approve.
- Web users: ``DEVOPS_CREW_WEB_USERS`` (JSON; see :class:`~devops_automation.settings.WebUser`), on channel
  ``web``, with their roles; a password (argon2 via pwdlib) for the dashboard and an optional token for the
  JSON API.

Tokens are compared in constant time against every entry; an unknown user's login still verifies a
password against a dummy hash, so timing does not tell which user names exist.
"""

from __future__ import annotations

import hmac
import threading
import time
from dataclasses import dataclass

from pwdlib import PasswordHash

from ..authz import Actor, Channel, Role, parse_roles
from ..errors import ConfigurationError
from ..settings import Settings

A2A_ROLES = frozenset({Role.requester, Role.viewer})

_hasher = PasswordHash.recommended()
_DUMMY_HASH = _hasher.hash("not a password of anyone")


def hash_password(password: str) -> str:
    """An argon2id hash for DEVOPS_CREW_WEB_USERS (``devops-crew hash-password``)."""
    return _hasher.hash(password)


@dataclass(frozen=True)
class _Credential:
    token: bytes
    actor: Actor


class Authenticator:
    """The credentials of one settings object. Raises ConfigurationError at construction for tables that
    cannot be read (a bad entry, an unknown role, a token shorter than 16 characters, a password hash that
    is not an argon2 hash) and for one token given to two callers: a bearer token names exactly one actor
    (the first entry would win, so a web user's token shared with an A2A caller gave that caller the web
    user's roles on the JSON API and locked it out of A2A)."""

    def __init__(self, settings: Settings) -> None:
        try:
            users = settings.web_user_table()
            pairs = settings.a2a_token_pairs()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self._users: dict[str, tuple[str | None, Actor]] = {}
        self._tokens: list[_Credential] = []
        for name, user in users.items():
            try:
                roles = parse_roles(",".join(user.roles))
            except ValueError as exc:
                raise ConfigurationError(f"DEVOPS_CREW_WEB_USERS: {name}: {exc}") from None
            actor = Actor(id=name, channel=Channel.web, display_name=user.display_name or name, roles=roles)
            if user.password_hash is not None and not any(h.identify(user.password_hash) for h in _hasher.hashers):
                raise ConfigurationError(
                    f"DEVOPS_CREW_WEB_USERS: {name}: password_hash is not an argon2 hash "
                    "(make one with `devops-crew hash-password`)"
                )
            self._users[name] = (user.password_hash, actor)
            if user.token is not None:
                self._tokens.append(_Credential(user.token.get_secret_value().encode(), actor))
        for team, token in pairs:
            if len(token) < 16:
                raise ConfigurationError(f"DEVOPS_CREW_A2A_TOKENS: the token of {team} is shorter than 16 characters")
            actor = Actor(id=team, channel=Channel.a2a, display_name=team, roles=A2A_ROLES)
            self._tokens.append(_Credential(token.encode(), actor))
        holders: dict[bytes, str] = {}
        for credential in self._tokens:
            who = f"{credential.actor.channel.value} {credential.actor.id}"
            if credential.token in holders:
                raise ConfigurationError(
                    f"one token is given to two callers ({holders[credential.token]} and {who}): "
                    "DEVOPS_CREW_WEB_USERS and DEVOPS_CREW_A2A_TOKENS need a token of their own for each"
                )
            holders[credential.token] = who

    @property
    def has_a2a_callers(self) -> bool:
        return any(c.actor.channel is Channel.a2a for c in self._tokens)

    @property
    def has_users(self) -> bool:
        return bool(self._users)

    def bearer(self, authorization: str | None, *, channel: Channel | None = None) -> Actor | None:
        """The actor of an ``Authorization: Bearer <token>`` header, optionally only on ``channel``;
        None for a missing, malformed or unknown token."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        offered = token.strip().encode()
        found: Actor | None = None
        for credential in self._tokens:  # every entry is compared: timing does not tell which matched
            if hmac.compare_digest(credential.token, offered) and found is None:
                found = credential.actor
        if found is not None and channel is not None and found.channel is not channel:
            return None
        return found

    def login(self, name: str, password: str) -> Actor | None:
        """The web user ``name`` if ``password`` is theirs, else None."""
        stored, actor = self._users.get(name, (None, None))
        if stored is None or actor is None:
            _hasher.verify(password, _DUMMY_HASH)
            return None
        try:
            ok = _hasher.verify(password, stored)
        except Exception:  # a malformed stored hash: no login, never a 500
            return None
        return actor if ok else None

    def user(self, name: str) -> Actor | None:
        """The web user ``name`` as the settings define them now (a session re-reads its roles)."""
        entry = self._users.get(name)
        return entry[1] if entry else None


class LoginThrottle:
    """Failed sign-ins per user name and per client address: after ``limit`` failures of a name within
    ``window`` seconds, that name may not try again until the window has passed; an address (keys starting
    ``addr:``) is held back only after ``address_limit`` failures, so one user's mistyped passwords do not
    lock out everyone behind the same address (a proxy, an office), while one client guessing across many
    names still is. Per process (each replica counts its own); argon2's cost is the other half of the
    defence."""

    def __init__(self, *, limit: int = 5, window: float = 60.0, address_limit: int = 20) -> None:
        self.limit, self.window, self.address_limit = limit, window, address_limit
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.window]
        if kept:
            self._failures[key] = kept
        else:
            self._failures.pop(key, None)
        return kept

    def blocked(self, *keys: str) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        now = time.monotonic()
        with self._lock:
            waits = [self.window - (now - r[0]) for k in keys if len(r := self._recent(k, now)) >= self._limit(k)]
        return max(waits, default=0.0)

    def _limit(self, key: str) -> int:
        return self.address_limit if key.startswith("addr:") else self.limit

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, []).append(now)
            if len(self._failures) > 10_000:  # bounded memory under a flood of names
                for key in list(self._failures)[:5_000]:
                    del self._failures[key]

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)
