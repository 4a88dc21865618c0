"""Legal holds (built in the retention-and-holds issue)."""
