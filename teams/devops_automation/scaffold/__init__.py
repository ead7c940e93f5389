"""Rendering a TeamSpec into files with cookiecutter, and validating what was rendered."""
