"""ZStorage: run-time tables, typed fields, validation rules, records and the query language."""
