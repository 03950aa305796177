"""Subscribers: addresses, lifecycle and history, tokens for personal links."""
