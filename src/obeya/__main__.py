"""`python -m obeya` runs the command line."""

from obeya.cli import main

main()
