"""The Phoenix collector distribution: build it, find it, and ask it to validate configs."""
