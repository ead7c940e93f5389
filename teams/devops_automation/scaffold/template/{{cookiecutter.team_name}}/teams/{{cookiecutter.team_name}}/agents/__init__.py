"""Agent modules of the {{ cookiecutter.team_name }} team: one ``<role>.py`` with ``build()`` per agent."""
