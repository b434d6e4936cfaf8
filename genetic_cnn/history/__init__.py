"""history: a run's database and what is read back from it (rundata, noise, summary, front, export),
and summary.json. Imports space/, search/ (records, pareto), config, errors and files; no torch."""
