"""Example Lambda handlers served by smyth (standard library only)."""
