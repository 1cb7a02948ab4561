"""One module per CLI command: `ARGUMENTS` (its flags and positionals, a pyrunc.flags.Command,
from which both of the CLI's parsers are built) and `run(args) -> exit status`."""
