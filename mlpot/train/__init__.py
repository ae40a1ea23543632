"""Training: config schema, tasks (loss and metrics), trainer, plots."""
