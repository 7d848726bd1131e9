from rearag.cli import main

main()
