"""The Textual front end: an app shell, one module per screen, palette commands and themes."""
