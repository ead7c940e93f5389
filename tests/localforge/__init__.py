"""Tests of the local forge: GitHub schema conformance, PyGithub flows, failures and timings."""
