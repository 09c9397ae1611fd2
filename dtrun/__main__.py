from dtrun.cli import main

main()
