"""Rule unit tests: test files in, pass/fail with a readable diff out, on a virtual clock."""
