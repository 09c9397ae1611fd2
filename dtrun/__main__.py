from dtrun.cli import entry

entry()
