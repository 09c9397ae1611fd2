from dtrun.startup import entry

entry()
