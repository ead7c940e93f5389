"""Turning a capability gap into a TeamSpec: the offline drafter and the LLM crew share one interface."""
