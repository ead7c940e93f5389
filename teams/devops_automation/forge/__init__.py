"""Publishing: pushing the auto/ branch with GitPython and opening the pull request on a forge."""
