"""SMS reporting: figures kept as rollups (rollups.py), read for the dashboards (figures.py)."""
