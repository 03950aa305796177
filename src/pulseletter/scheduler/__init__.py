"""APScheduler wiring: triggers from config, stable job ids, listeners. Jobs call service
functions only (``service.weekly``); nothing here decides what gets sent."""
