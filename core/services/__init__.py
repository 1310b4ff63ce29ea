"""Use cases called by the CLI and the pages; they talk to the store through units of work."""
