"""The `eventgate` command line: the top layer, composing app, workers and db."""
