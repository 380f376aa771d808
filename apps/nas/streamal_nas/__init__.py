"""Architecture search on streamal's overlap scheduler."""
