"""Helpers shared by the test suites: in-process servers and fixtures."""
