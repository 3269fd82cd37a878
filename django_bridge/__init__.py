"""pg-audit's Django bridge: install by migration, request context, auth and admin events."""
