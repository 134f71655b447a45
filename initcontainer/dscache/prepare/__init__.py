"""`dscache prepare`: the lock-free init-container path."""
