"""The engine: the state-machine runner (:mod:`.runner`), the steps it runs (:mod:`.steps`), what they
share (:mod:`.context`) and the after-publish life cycle (:mod:`.lifecycle`). Only the service layer
(:mod:`devops_automation.service`) calls it; entry points never do."""

from .context import Deps, Hooks, Progress, ProgressEvent, RunContext, StepObserver
from .lifecycle import Lifecycle, TrackResult
from .runner import Engine, Submission, describe_error

__all__ = [
    "Deps",
    "Engine",
    "Hooks",
    "Lifecycle",
    "Progress",
    "ProgressEvent",
    "RunContext",
    "StepObserver",
    "Submission",
    "TrackResult",
    "describe_error",
]
