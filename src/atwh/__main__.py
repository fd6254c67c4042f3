from atwh.cli import main

main()
