"""Workflows: how simulation, training and the policy are ordered and overlapped."""
