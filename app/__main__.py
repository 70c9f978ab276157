"""`python -m app` is the `eventgate` command."""

from app.cli import main

main()
