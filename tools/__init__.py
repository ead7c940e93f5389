"""CrewAI tools: thin, audited wrappers over the application's modules (``devops_automation.tools``)."""
