"""Content: read articles and insights from sources, store them, choose the week's stories."""
