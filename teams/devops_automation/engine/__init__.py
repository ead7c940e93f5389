"""The engine: the state-machine runner (:mod:`.runner`), the steps it runs (:mod:`.steps`), what they
share (:mod:`.context`) and the after-publish life cycle (:mod:`.lifecycle`). Only the service layer
(:mod:`devops_automation.service`) calls it; entry points never do."""

from .context import Deps, Progress, ProgressEvent, RunContext
from .lifecycle import Lifecycle, TrackResult
from .runner import Engine, Submission, describe_error

__all__ = [
    "Deps",
    "Engine",
    "Lifecycle",
    "Progress",
    "ProgressEvent",
    "RunContext",
    "Submission",
    "TrackResult",
    "describe_error",
]
