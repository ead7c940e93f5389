"""Imported by the validation forkserver only (``team_tests.PRELOAD``): pytest's default plugins.

``pytest.main`` imports each of them when it builds its config; imported once in the server, every
forked child finds them in ``sys.modules`` (about 15 ms a run).
"""

from __future__ import annotations

import importlib

from _pytest.config import default_plugins

for _plugin in default_plugins:
    importlib.import_module(f"_pytest.{_plugin}")
