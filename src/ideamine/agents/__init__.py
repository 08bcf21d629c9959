"""Agents: the Agent seam, template rendering, the offline text helpers."""
