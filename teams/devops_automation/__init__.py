"""devops-crew: turns capability gaps into reviewed pull requests that add new teams.

The package is the application behind the ``devops-crew`` command. Importing it is cheap: CrewAI and
the other heavy libraries are imported only inside the steps that need them.
"""

__version__ = "0.1.0"
