"""SMS reporting: figures kept as rollups (rollups.py), read for the dashboards (figures.py), and
the people behind each figure (people.py)."""
