"""Research endpoints (SPEC §13): v1 conventions (snake_case, field-keyed 400s, 404, 409)."""
