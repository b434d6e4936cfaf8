"""history: a run's database and what is read back from it (rundata, noise, summary, front, export).
Imports space/, search/ (records, pareto), config and errors; no torch."""
