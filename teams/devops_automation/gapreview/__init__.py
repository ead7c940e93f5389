"""The scheduled gap review (``devops-crew review-gaps``): reads gap sources (a directory of gap reports,
the table of unassigned tasks other crews write into), groups tasks by skill, drops what the registry,
open requests or earlier sightings already cover, and submits the rest through the rate limiter in
priority order."""
