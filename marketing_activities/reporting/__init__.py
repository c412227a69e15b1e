"""SMS reporting: the figures of the dashboards and the people behind each of them."""
