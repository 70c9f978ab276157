"""`python -m cli` is the `eventgate` command."""

from cli.main import main

main()
