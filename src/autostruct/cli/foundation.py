"""Foundation commands: info, train, measure, export (filled in by the foundation work)."""
