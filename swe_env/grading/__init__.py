"""Fresh-container grading: the grader, the restore policy, test runners and their in-container
recorder, test-log parsing, unified diffs, tampering flags.

This file stays a docstring: `swe_env.client` loads `suspicion` and `diffs` from here without the grader.
"""
