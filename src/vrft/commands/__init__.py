"""One module per `vrft` subcommand; each exposes `add_arguments(parser)` and `run(args) -> int`."""
