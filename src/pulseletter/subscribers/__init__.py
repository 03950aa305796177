"""Subscribers: addresses, lifecycle and history, tokens for personal links, CSV import.

addresses   what an address is (email-validator), its key, hash and sending form
lifecycle   statuses and their transitions, history events, delete and erase
tokens      signed, expiring confirmation and CSRF tokens (HMAC under security.secret)
links       the personal links in every message
csv_format  reading subscriber CSV files row by row
bulk        batched inserts for imports that never touch existing rows
"""
