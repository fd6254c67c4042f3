"""`python -m atwh`: the same command as `atwh`."""

from atwh.cli import main

main()
