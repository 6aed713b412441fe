"""Storage: the tables (:mod:`.schema`), the engine (:mod:`.database`), migrations and files."""
