"""tables: the table file (read, write, load by name), searches simulated on a table, a table's exact front.
Imports space/, search/, config and errors; no torch. The shipped *.json.gz tables beside it are package data."""
