"""The `dscache` command line: `app` (entry point and dispatch), `exits` (the one mapping from errors
to exit codes), `render` (progress for terminals, Job logs and JSON), `common` (helpers shared by
adapters), and one thin argparse adapter per command (`install`, `prepare`, `status`, `verify`, `gc`,
`release`, `publish`, `demo`)."""
