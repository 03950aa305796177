"""The public web app (Starlette): sign-up, confirm, unsubscribe, preferences, archive, health."""
