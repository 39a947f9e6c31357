"""The composition root: the app, the server and the CLI's context, built from settings."""
