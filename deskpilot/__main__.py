from deskpilot.cli import main

main()
