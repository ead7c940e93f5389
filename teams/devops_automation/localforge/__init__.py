"""The embedded stand-in for GitHub: bare repositories plus a server speaking GitHub's REST shape."""
