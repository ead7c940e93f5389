"""One error tree: what fails a step resumably, what surfaces as a bug, and the exit-code/HTTP table."""

from __future__ import annotations

from pathlib import Path

import pytest

from devops_automation import errors
from devops_automation.app import build_app
from devops_automation.drafting.base import DraftContext, Drafted
from devops_automation.models import CapabilityGap, LLMUsage, RequestState

from .conftest import make_settings
from .helpers import new_gap


class RaisingDrafter:
    label = "raising drafter"

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def draft(self, gap: CapabilityGap, context: DraftContext) -> Drafted:
        raise self.exc


def app_with(tmp_path: Path, exc: Exception):
    return build_app(
        make_settings(tmp_path / "home", forge="fake", validate_render=False), drafter=RaisingDrafter(exc)
    )


def test_a_step_failure_ends_the_step_failed_and_resumable_with_its_cost(tmp_path: Path) -> None:
    app = app_with(tmp_path, errors.LLMError("the model timed out", LLMUsage(calls=2, prompt_tokens=10)))
    try:
        request = app.engine.submit(new_gap(1)).request
        assert request.state is RequestState.failed and request.resume_state is RequestState.analysed
        assert request.error == "the model timed out" and request.llm_usage.calls == 2
    finally:
        app.close()


@pytest.mark.parametrize("bug", [KeyError("spec"), ValueError("bad"), OSError("disk"), AttributeError("x")])
def test_anything_else_is_a_bug_and_surfaces_as_one(tmp_path: Path, bug: Exception) -> None:
    """Before, bare ValueError/OSError were stored as resumable failures and hid coding bugs."""
    app = app_with(tmp_path, bug)
    try:
        with pytest.raises(type(bug)):
            app.engine.submit(new_gap(1))
        stored = app.store.get_request_by_gap("gap-n1")
        assert stored is not None and stored.state is RequestState.analysed  # the last good state, not failed
    finally:
        app.close()


@pytest.mark.parametrize(
    ("exc", "code", "status"),
    [
        (errors.NotFound("x"), 2, 404),
        (errors.PermissionDenied("x"), 2, 403),
        (errors.ActionRefused("x"), 2, 409),
        (errors.InvalidInput("x"), 2, 422),
        (errors.ConfigurationError("x"), 2, 500),
        (errors.BroadTokenError("x"), 2, 500),
        (errors.PolicyViolation("rule", "x"), 3, 422),
        (errors.ForgeError("x", status=502), 1, 502),
        (errors.GitError("x"), 1, 502),
        (errors.RenderInvalid(["x"]), 1, 502),
        (errors.LLMError("x"), 1, 502),
    ],
)
def test_one_table_maps_errors_to_exit_codes_and_http_statuses(exc: errors.DevopsCrewError, code: int, status: int):
    assert (errors.exit_code(exc), errors.http_status(exc)) == (code, status)
    assert isinstance(exc, errors.DevopsCrewError)
    assert isinstance(exc, errors.STEP_FAILURES) == (code in {1, 3})
