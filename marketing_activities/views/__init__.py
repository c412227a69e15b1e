"""The marketer's screens, one module per screen (see urls.py for the map)."""
