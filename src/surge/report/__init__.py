"""Presentation of analysis results as files: Markdown, JUnit XML (and, later, HTML)."""
