"""The crew's agent definitions (CrewAI YAML convention), installed as ``devops_automation.agents``."""
