"""Notifications: what happened to a request (a PR opened, a request waits for a human, a PR merged or
closed, a request failed, a rollback opened), told to people on the channels the settings configure.

The store writes each event into an outbox table in the same transaction as the state change that
caused it (:mod:`.events`), so no event is lost on a crash and none is made twice by a resume; the
:class:`~.dispatch.Dispatcher` then sends each event once per channel (:mod:`.channels`), retrying a
failing channel with backoff without ever failing the request.
"""
