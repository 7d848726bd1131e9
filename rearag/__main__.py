from rearag.agent.cli import main

main()
