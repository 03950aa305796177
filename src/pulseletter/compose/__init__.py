"""Compose: render the issue (Jinja2 -> MJML -> HTML, plus plain text) once, personalise cheaply."""
