"""Mail: turn a compiled issue into MIME bytes per recipient, and hand bytes to a transport."""
