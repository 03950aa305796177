"""Dispatch: the delivery ledger and the sender that works through it exactly once."""
