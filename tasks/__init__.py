"""The crew's task definitions (CrewAI YAML convention), installed as ``devops_automation.tasks``."""
