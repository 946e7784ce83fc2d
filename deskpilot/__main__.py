from deskpilot.entry import main

main()
