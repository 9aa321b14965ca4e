"""The project's own tests use the fixtures it publishes as a pytest plugin (rollup.testing)."""
