"""Replay of scenario files over SSH, and the session report."""
