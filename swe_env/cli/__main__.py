"""`python -m swe_env.cli`: the `swe-env` command."""

from . import main

if __name__ == "__main__":  # not when a walk over the package imports this module
    main()
