"""End to end: the runtime without torch or a toolkit, commands as subprocesses."""
