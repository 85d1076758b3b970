"""Unit tests, kept in a package so that their module names differ from same-named e2e tests."""
