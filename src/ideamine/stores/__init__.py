"""The Store seam and its SQL implementations; the only place SQL lives."""
