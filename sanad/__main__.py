"""`python -m sanad` is the `sanad` command."""

from sanad.cli import main

main()
