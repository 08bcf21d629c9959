"""``python -m ideamine`` runs the command line."""

from ideamine.cli.main import main

main()
